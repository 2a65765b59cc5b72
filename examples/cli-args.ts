/**
 * The examples' flag parser: `--name value` pairs and bare `--flag`s (value 'true'); anything not
 * starting with `--` and not a flag's value is ignored. Shared by the CLI examples.
 */
export function args(argv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      m.set(a.slice(2), next);
      i++;
    } else m.set(a.slice(2), 'true');
  }
  return m;
}
