import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Node flags that run our TypeScript sources directly (see run-ts.mjs). */
export const nodeFlags = ['--conditions=petrel-src', '--import', 'tsx', '--enable-source-maps'];
