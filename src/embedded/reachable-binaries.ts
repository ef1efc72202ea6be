import { createHash } from 'node:crypto';
import { chmod, cp, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * As root, PostgreSQL runs as the `postgres` system user (it refuses to run as
 * root), and that user must be able to reach the binaries. They live in the
 * project's node_modules, which it cannot enter when an ancestor folder is
 * private: a project under /root, a clone in a `mktemp -d` folder. So the
 * platform package's `native` folder (bin, lib, share) is copied once to a
 * cache every user can read, `<tmpdir>/rlsctl-embedded-pg/pg-<platform>-<version>-<hash>`,
 * and run from there.
 *
 * The cache is created safely, since root runs what is in it: every folder is
 * mode 755 and owned by the current user, no file is writable by group or
 * others, a symbolic link must stay inside the copy, and a copy is made in a
 * private temporary folder then renamed into place, so a half-made copy is
 * never used. An existing cache folder that is a symbolic link, is owned by
 * another user, or is writable by others is refused.
 */
export const CACHE_FOLDER = 'rlsctl-embedded-pg';

export class UnsafeCache extends Error {}

interface Entry {
  rel: string;
  kind: 'file' | 'dir' | 'link';
  size: number;
  mode: number;
  target?: string;
}

async function walk(root: string, rel = ''): Promise<Entry[]> {
  const out: Entry[] = [];
  const names = (await readdir(path.join(root, rel))).sort();
  for (const name of names) {
    const r = path.join(rel, name);
    const info = await lstat(path.join(root, r));
    if (info.isSymbolicLink()) out.push({ rel: r, kind: 'link', size: 0, mode: info.mode, target: await readlink(path.join(root, r)) });
    else if (info.isDirectory()) {
      out.push({ rel: r, kind: 'dir', size: 0, mode: info.mode });
      out.push(...(await walk(root, r)));
    } else if (info.isFile()) out.push({ rel: r, kind: 'file', size: info.size, mode: info.mode });
  }
  return out;
}

/** A folder we may trust: a real folder (not a link), ours, not writable by group or others. */
async function checkFolder(folder: string): Promise<void> {
  const info = await lstat(folder);
  const uid = process.getuid?.();
  if (info.isSymbolicLink() || !info.isDirectory()) throw new UnsafeCache(`${folder} is not a plain folder (a symbolic link?)`);
  if (uid !== undefined && info.uid !== uid) throw new UnsafeCache(`${folder} belongs to uid ${info.uid}, not to the current user`);
  if ((info.mode & 0o022) !== 0) throw new UnsafeCache(`${folder} is writable by other users (mode ${(info.mode & 0o777).toString(8)})`);
}

/** Make the copy readable by everyone and writable by its owner only; refuse links that leave it. */
async function seal(root: string): Promise<void> {
  for (const e of await walk(root)) {
    const full = path.join(root, e.rel);
    if (e.kind === 'link') {
      const resolved = path.resolve(path.dirname(full), e.target ?? '');
      if (path.isAbsolute(e.target ?? '') || !resolved.startsWith(root + path.sep)) {
        throw new UnsafeCache(`${e.rel} links outside the PostgreSQL package (${e.target})`);
      }
    } else if (e.kind === 'dir') await chmod(full, 0o755);
    else await chmod(full, (e.mode & 0o777 & ~0o022) | 0o444);
  }
  await chmod(root, 0o755);
}

/**
 * The `native` folder of a copy of the platform package under `base` (made on
 * first use), for a package found at `nativeDir`. `label` names the package
 * and version in the folder name.
 */
export async function reachableNative(nativeDir: string, label: string, base: string): Promise<string> {
  const hash = createHash('sha256');
  // The key: the file list (names, sizes, modes, link targets) and the content of the programs in bin/.
  for (const e of await walk(nativeDir)) {
    hash.update(`${e.rel}\0${e.kind}\0${e.size}\0${e.mode & 0o777}\0${e.target ?? ''}\n`);
    if (e.kind === 'file' && e.rel.startsWith(`bin${path.sep}`)) hash.update(await readFile(path.join(nativeDir, e.rel)));
  }
  const key = `${label.replace(/[^A-Za-z0-9.+-]+/g, '_')}-${hash.digest('hex').slice(0, 16)}`;
  await mkdir(base, { mode: 0o755 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  await checkFolder(base);
  // mkdir honours the umask: a 077 umask would leave it private.
  await chmod(base, 0o755);
  const final = path.join(base, key);
  const existing = await lstat(final).catch(() => undefined);
  if (!existing) {
    const work = await mkdtemp(path.join(base, '.partial-'));
    try {
      await cp(nativeDir, path.join(work, 'native'), { recursive: true, verbatimSymlinks: true });
      await seal(work);
      await rename(work, final).catch(async (error: NodeJS.ErrnoException) => {
        // Another process made the same copy meanwhile: use theirs.
        if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
      });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  await checkFolder(final);
  await checkFolder(path.join(final, 'native'));
  return path.join(final, 'native');
}
