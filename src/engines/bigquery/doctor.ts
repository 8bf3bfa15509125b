import { errorMessage } from '../../errors.ts';
import type { DoctorCheck } from '../../operations/doctor.ts';
import { getDataset } from './catalog.ts';
import { describeBigQueryError, openClients } from './client.ts';
import { restCall } from './rest.ts';
import type { BigQuerySource } from './source.ts';

/** `bak doctor` for a BigQuery source: datasets.get of the dataset it names, else one page of at most one dataset. */
export async function doctorBigQuery(source: BigQuerySource): Promise<DoctorCheck[]> {
  const o = source.options;
  const clients = openClients(o.ref.project, o);
  const fix = 'check the project and dataset in the source URI, the endpoint and the credentials (keyFile, or Application Default Credentials)';
  try {
    if (o.ref.dataset !== undefined) {
      await getDataset(clients, o.ref.dataset);
      return [{ name: 'dataset', status: 'ok', detail: `${o.ref.project}.${o.ref.dataset} at ${clients.where}: reachable` }];
    }
    try {
      await restCall(clients, 'datasets.list', { uri: '/datasets', qs: { maxResults: 1 } });
    } catch (err) {
      throw describeBigQueryError(err, `listing the datasets of project ${o.ref.project}`, clients.where);
    }
    return [{ name: 'project', status: 'ok', detail: `${o.ref.project} at ${clients.where}: datasets can be listed` }];
  } catch (err) {
    return [{ name: o.ref.dataset !== undefined ? 'dataset' : 'project', status: 'fail', detail: errorMessage(err), fix }];
  } finally {
    await clients.close();
  }
}
