/**
 * hq-interop (HTTP/0.9 over QUIC) request side, shared by the interop endpoint and the bench
 * server: reads a request stream up to its first line (at most 8 KiB), stops reading, and returns
 * the path of `GET <path>`, or null when the line is not a GET.
 */
export async function readHqGetPath(readable: ReadableStream<Uint8Array>): Promise<string | null> {
  const reader = readable.getReader();
  let req = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (value) req += Buffer.from(value).toString('latin1');
    if (done || req.includes('\n') || req.length > 8192) break;
  }
  void reader.cancel().catch(() => {});
  return /^GET\s+(\S+)/.exec(req)?.[1] ?? null;
}
