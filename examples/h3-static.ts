/**
 * A static-file request handler for `serve()` (used by `pnpm h3-server`):
 *
 *   const server = await serve({ port: 4433, host: '127.0.0.1', cert, key }, staticFiles('/srv/www'));
 *
 * GET and HEAD only (405 with `allow` otherwise); content types by extension; `index.html` for a
 * directory (a directory URL without its final slash is redirected, so relative links work); 404
 * for anything missing; 403 for a path that leaves the root (after percent-decoding, `..` segments
 * and symbolic links are resolved, the real path must stay inside the real root). Files are streamed
 * from disk in 64 KiB reads as the transport asks for more (no whole-file buffering).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FetchHandler } from '../packages/h3/src/web.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.xml': 'application/xml',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.mp3': 'audio/mpeg',
  '.woff2': 'font/woff2',
};

export function contentType(file: string): string {
  return TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

const CHUNK = 64 * 1024;

/** A pull-based body: one read per pull, closed at EOF, on cancel or on error. */
function fileBody(fh: fs.promises.FileHandle, size: number): ReadableStream<Uint8Array> {
  let pos = 0;
  let closed = false;
  const close = async (): Promise<void> => {
    if (!closed) {
      closed = true;
      await fh.close().catch(() => {});
    }
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        try {
          const buf = new Uint8Array(Math.min(CHUNK, Math.max(1, size - pos)));
          const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
          if (bytesRead === 0) {
            await close();
            c.close();
            return;
          }
          pos += bytesRead;
          c.enqueue(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
        } catch (e) {
          await close();
          c.error(e);
        }
      },
      cancel: close,
    },
    { highWaterMark: 0 },
  );
}

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(`${body}\n`, { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers } });
}

export interface StaticOptions {
  /** Called once per response (method, path, status, size). */
  log?: (line: string) => void;
}

export function staticFiles(rootDir: string, opts: StaticOptions = {}): FetchHandler {
  const root = fs.realpathSync(rootDir);
  const inside = (p: string): boolean => p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
  const handle = async (req: Request): Promise<Response> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'method not allowed', { allow: 'GET, HEAD' });
    const url = new URL(req.url);
    let rel: string;
    try {
      rel = decodeURIComponent(url.pathname);
    } catch {
      return text(400, 'bad percent-encoding');
    }
    if (rel.includes('\0') || rel.includes('\\')) return text(400, 'bad path');
    let file = path.resolve(root, `.${path.posix.normalize(`/${rel}`)}`);
    // The lexical check (cannot fail after normalize, kept as a guard) and the real-path check
    // (symbolic links inside the root that point outside it).
    if (!inside(file)) return text(403, 'forbidden');
    let st: fs.Stats;
    try {
      file = await fs.promises.realpath(file);
      if (!inside(file)) return text(403, 'forbidden');
      st = await fs.promises.stat(file);
      if (st.isDirectory()) {
        if (!url.pathname.endsWith('/')) return new Response(null, { status: 301, headers: { location: `${url.pathname}/${url.search}` } });
        file = path.join(file, 'index.html');
        st = await fs.promises.stat(file);
      }
    } catch {
      return text(404, 'not found');
    }
    if (!st.isFile()) return text(404, 'not found');
    const headers = { 'content-type': contentType(file), 'content-length': String(st.size), 'last-modified': st.mtime.toUTCString() };
    if (req.method === 'HEAD') return new Response(null, { status: 200, headers });
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(file, 'r');
    } catch {
      return text(404, 'not found');
    }
    return new Response(fileBody(fh, st.size), { status: 200, headers });
  };
  if (!opts.log) return handle;
  const log = opts.log;
  return async (req) => {
    const t0 = performance.now();
    const res = await handle(req);
    log(`${req.method} ${new URL(req.url).pathname} ${res.status} ${res.headers.get('content-length') ?? '-'} ${(performance.now() - t0).toFixed(1)} ms`);
    return res;
  };
}
