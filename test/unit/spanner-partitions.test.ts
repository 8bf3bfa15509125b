// partitions.ts at the client boundary (no server here has PartitionRead: handy-spanner answers UNIMPLEMENTED):
// the request it makes, when a table is read whole instead, and that the first UNIMPLEMENTED turns it off.
import { describe, expect, it } from 'vitest';
import type { SpannerClients } from '../../src/engines/spanner/client.ts';
import { Partitioner } from '../../src/engines/spanner/partitions.ts';
import { avroItemName } from '../../src/engines/spanner/table-files.ts';

function standIn(answers: Array<{ partitions?: Array<{ partitionToken: Buffer }> } | { code: number }>) {
  const requests: Array<Record<string, unknown>> = [];
  const clients = {
    data: {
      async partitionRead(request: Record<string, unknown>) {
        requests.push(request);
        const answer = answers.shift()!;
        if ('code' in answer) throw Object.assign(new Error(`${answer.code} stand-in`), { code: answer.code });
        return [answer];
      },
    },
  } as unknown as SpannerClients;
  return { clients, requests };
}

const TX = Buffer.from('tx');

describe('Partitioner', () => {
  it('asks for the whole table in the transaction and returns the tokens', async () => {
    const tokens = [Buffer.from('a'), Buffer.from('b'), Buffer.from('c')];
    const { clients, requests } = standIn([{ partitions: tokens.map((partitionToken) => ({ partitionToken })) }]);
    const p = new Partitioner(clients, 'sessions/s', TX, 16);
    expect(await p.partitions('T', ['a', 'b'])).toEqual(tokens);
    expect(requests[0]).toEqual({ session: 'sessions/s', transaction: { id: TX }, table: 'T', columns: ['a', 'b'], keySet: { all: true }, partitionOptions: { maxPartitions: 16 } });
  });

  it('reads a table whole when it comes in one partition, or the request is refused for it', async () => {
    const { clients } = standIn([{ partitions: [{ partitionToken: Buffer.from('only') }] }, { code: 3 }, { code: 9 }, { code: 14 }]);
    const p = new Partitioner(clients, 's', TX, 16);
    expect(await p.partitions('T', ['a'])).toBeUndefined();
    expect(await p.partitions('T', ['a'])).toBeUndefined();
    expect(await p.partitions('T', ['a'])).toBeUndefined();
    expect(await p.partitions('T', ['a'])).toBeUndefined(); // UNAVAILABLE: one stream, which reports a server gone
    expect(p.supported).toBe(true);
  });

  it('stops asking after UNIMPLEMENTED, and rethrows access errors', async () => {
    const { clients, requests } = standIn([{ code: 12 }, { code: 7 }]);
    const p = new Partitioner(clients, 's', TX, 16);
    expect(await p.partitions('T', ['a'])).toBeUndefined();
    expect(p.supported).toBe(false);
    expect(await p.partitions('U', ['a'])).toBeUndefined();
    expect(requests.length).toBe(1);
    const q = new Partitioner(standIn([{ code: 7 }]).clients, 's', TX, 16);
    await expect(q.partitions('T', ['a'])).rejects.toMatchObject({ code: 7 });
    expect(await new Partitioner(clients, 's', TX, 1).partitions('T', ['a'])).toBeUndefined();
  });

  it('names each partition’s files apart', () => {
    expect(avroItemName('T', 3)).toBe('tables/T/T.avro-00003');
    expect(avroItemName('T', 0, 12)).toBe('tables/T/T.avro-p0012-00000');
  });
});
