/**
 * The agent's web UI server. It listens before the worker id is known (the port is part of
 * a new worker id) and answers 503 until the agent attaches its app. The worker UI shows
 * every task's logs, so, as the master UI, it listens beyond loopback only when the
 * cluster's secret is set.
 */
import { listenHttp, type ListeningServer } from '../../lib/http-listen.ts';
import { SECRET_KEY, isLoopbackHost } from '../../lib/http/auth.ts';
import type { ServerTls } from '../../lib/http/tls.ts';

type FetchHandler = (request: Request) => Response | Promise<Response>;

/** uiBindProblem: why the worker UI must not listen on `host`, or undefined. */
export function uiBindProblem(host: string, secret: string | undefined): string | undefined {
  if (secret || isLoopbackHost(host)) return undefined;
  return `refusing to serve the worker web UI on ${host} without ${SECRET_KEY} (its pages show every task's logs): use a loopback address or set the secret`;
}

/** AgentWebUi: the listening server, its URL, and the app it serves once attached. */
export class AgentWebUi {
  private app: { fetch: FetchHandler } | undefined;

  private constructor(
    readonly url: string,
    readonly port: number,
    private readonly server: ListeningServer | undefined,
  ) {}

  /** listen binds host:port (0 = any free port); `false` serves nothing and only reports the given port. */
  static async listen(options: { enabled: boolean; host: string; port: number; secret: string | undefined; tls?: ServerTls }): Promise<AgentWebUi> {
    if (!options.enabled) {
      if (!(options.port > 0)) throw new Error('a worker without a web UI needs an explicit port (--port > 0)');
      return new AgentWebUi(`http://${options.host}:${options.port}`, options.port, undefined);
    }
    const problem = uiBindProblem(options.host, options.secret);
    if (problem !== undefined) throw new Error(problem);
    // the app is attached later: the handler reads it through this box
    const box: { ui?: AgentWebUi } = {};
    const server = await listenHttp((request) => (box.ui?.app ? box.ui.app.fetch(request) : new Response('worker starting', { status: 503 })), {
      host: options.host,
      port: options.port,
      what: 'the worker web UI',
      tls: options.tls,
    });
    box.ui = new AgentWebUi(server.url, server.port, server);
    return box.ui;
  }

  attach(app: { fetch: FetchHandler }): void {
    this.app = app;
  }

  close(): Promise<void> {
    return this.server?.close() ?? Promise.resolve();
  }
}
