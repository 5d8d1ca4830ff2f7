// The render service (src/context/render-service.ts): what an open gets when rendering cannot even start.
// On a fixture tree (test/fixtures), with the real renderer module: a file source that runs out of
// descriptors makes the open EIO with the reason for the log, never a crash and never "your container is
// gone" (ESRCH), and the next open works again; and renders read the host's files through the service's
// shared copies.

import t from 'tap';
import { join } from 'node:path';
import { CgroupReader, type FileSource } from 'node-cgroups-parser';
import { ContainerResolver } from '../src/context/containers.js';
import { RenderService } from '../src/context/render-service.js';
import * as renderers from '../src/renderers/index.js';
import { fx, OPTS } from './helpers/fixture-trees.js';

t.test('out of descriptors: EIO with the reason, then served again', async (t) => {
  const root = fx('v2');
  let exhausted = false;
  const plain = new CgroupReader({ procRoot: join(root, 'proc'), fsRoot: root });
  const files: FileSource = {
    read(path) {
      if (exhausted) throw new Error(`out of file descriptors (EMFILE) opening ${path}`);
      return plain.readFile(path);
    },
  };
  const reader = new CgroupReader({ procRoot: join(root, 'proc'), fsRoot: root, files });
  const service = new RenderService(reader, new ContainerResolver(reader, 100), OPTS, renderers);
  const caller = { pid: 202, uid: 0, gid: 0 };
  const first = service.render('proc/meminfo', caller);
  t.ok(first.ok, 'a container process (pid 202 in c1) is served');
  exhausted = true;
  const failed = service.render('proc/meminfo', caller);
  t.equal(failed.ok, false);
  if (!failed.ok) {
    t.equal(failed.errno, 'EIO', 'EIO: the daemon failed, not the caller');
    t.match(failed.reason, /EMFILE/, 'the reason names it, for the log');
  }
  exhausted = false;
  t.ok(service.render('proc/meminfo', caller).ok, 'served again once descriptors are back');
});

t.test('renders go through the service\'s shared host files', async (t) => {
  const root = fx('v2');
  const reader = new CgroupReader({ procRoot: join(root, 'proc'), fsRoot: root });
  const service = new RenderService(reader, new ContainerResolver(reader, 100), OPTS, renderers);
  t.equal(service.hostFiles.size, 0);
  t.ok(service.render('proc/stat', { pid: 202, uid: 0, gid: 0 }).ok);
  // (what and for how long they are shared: test/host-files.test.ts, with a clock of its own)
  t.ok(service.hostFiles.size >= 2, `the host's /proc/stat and CPU online list were read through it (${service.hostFiles.size} kept)`);
});
