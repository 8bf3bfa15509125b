import pkg from '../package.json' with { type: 'json' };

export const BAK_VERSION: string = pkg.version;
