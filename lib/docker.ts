/**
 * Docker: dockerode, loaded so that a client of a local engine does not carry what
 * only remote engines need. Import it from here, never from 'dockerode' directly.
 *
 * When dockerode is first loaded it requires docker-modem's SSH transport (ssh2, which
 * also instantiates its WebAssembly Poly1305 with 16 MB of memory) and its own BuildKit
 * session support (@grpc/grpc-js, @grpc/proto-loader, protobufjs): about 1.9 MB of
 * JavaScript that every worker agent compiled and kept, although a client of
 * /var/run/docker.sock never calls either. Before dockerode loads, stand-ins for those
 * two modules go into require's cache (lib/deferred-modules.ts); each loads the real
 * module on its first call, so an `ssh://` engine or a BuildKit session still works,
 * it only pays later (test/integration/docker-client.test.ts). If a dockerode or
 * docker-modem release moves those files, the stand-ins are simply not installed.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type Dockerode from 'dockerode';
import { deferOnFirstCall, hasRun } from './deferred-modules.ts';

const require = createRequire(import.meta.url);

/** deferredModulePaths: dockerode's modules that only remote engines or BuildKit builds use (each exports one function). */
function deferredModulePaths(): string[] {
  const dockerodeMain = require.resolve('dockerode');
  const modemMain = createRequire(dockerodeMain).resolve('docker-modem');
  return [join(dirname(dockerodeMain), 'session.js'), join(dirname(modemMain), 'ssh.js')];
}

if (!hasRun(require.resolve('dockerode'))) {
  for (const path of deferredModulePaths()) deferOnFirstCall(path);
}

export const Docker: typeof Dockerode = require('dockerode');
export type Docker = Dockerode;
