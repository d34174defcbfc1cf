/**
 * Authentication of the master UI's mutating routes (kill buttons, the queue
 * board). It reuses the REST server's tokens (lib/http/auth.ts: HS256 JWTs
 * with scopes) and their one decision function, `authorize`; a browser can also
 * carry its token in an HttpOnly cookie set by `/login`, so a person pastes a
 * token once instead of sending headers.
 *
 * Why the cookie is safe enough: it is HttpOnly (scripts cannot read it) and
 * SameSite=Strict (other sites cannot make the browser send it), and every
 * state-changing request also passes the Origin check (sameOriginForCookies).
 */
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';
import { HTTPException } from 'hono/http-exception';
import { authorize, extractToken, verifyToken, type AuthVariables, type Scope } from '../auth.ts';

/** SESSION_COOKIE: the cookie holding the UI token. */
export const SESSION_COOKIE = 'flint_token';

/** tokenFrom: the bearer header's token, else the session cookie's. */
export function tokenFrom(c: Context): string | undefined {
  return extractToken(c.req.header('authorization')) ?? getCookie(c, SESSION_COOKIE) ?? undefined;
}

export interface UiAuthOptions {
  secret: string | undefined;
  now?: () => number;
  /** renders a refusal (HTML for pages) */
  onDenied: (c: Context, status: 401 | 403, message: string) => Response | Promise<Response>;
}

/** requireUiScope: like auth.ts requireScope, but the token may also come from the session cookie. */
export function requireUiScope(scope: Scope, options: UiAuthOptions): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async function requireUiScopeMiddleware(c, next) {
    const token = tokenFrom(c);
    const decision = authorize(token ? `Bearer ${token}` : undefined, scope, options.secret, options.now ? options.now() : Date.now());
    if (decision.ok) {
      c.set('authClaims', decision.claims);
      await next();
      return;
    }
    c.header('WWW-Authenticate', decision.status === 403 ? `Bearer realm="flint", error="insufficient_scope", scope="${scope}"` : 'Bearer realm="flint"');
    return options.onDenied(c, decision.status, decision.message);
  };
}

/** currentClaims: the verified claims of the request's token, if any (for showing "logged in"). */
export function currentClaims(c: Context, secret: string | undefined, now = Date.now()) {
  const token = tokenFrom(c);
  if (!token || !secret) return undefined;
  const verified = verifyToken(token, secret, now);
  return verified.ok ? verified.claims : undefined;
}

/** startSession verifies `token` and sets the session cookie until the token expires; returns why not otherwise. */
export function startSession(c: Context, token: string, secret: string | undefined, now = Date.now()): { ok: true } | { ok: false; message: string } {
  if (!secret) return { ok: false, message: 'This master has no spark.flint.auth.secret configured, so nothing can be killed from the UI.' };
  const verified = verifyToken(token.trim(), secret, now);
  if (!verified.ok) return { ok: false, message: `Invalid token: ${verified.reason}.` };
  setCookie(c, SESSION_COOKIE, token.trim(), {
    httpOnly: true,
    sameSite: 'Strict',
    path: '/',
    secure: new URL(c.req.url).protocol === 'https:',
    maxAge: Math.max(1, Math.floor(verified.claims.exp - now / 1000)),
  });
  return { ok: true };
}

/** endSession clears the session cookie. */
export function endSession(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, { path: '/' });
}

/** safeRedirectPath: a same-origin path to go back to, or '/'. */
export function safeRedirectPath(next: string | undefined): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  return next;
}

const SAFE_METHOD = /^(GET|HEAD|OPTIONS)$/;

/**
 * isSameOriginRequest: the browser says the request comes from this UI's own pages:
 * Sec-Fetch-Site is `same-origin` and/or Origin is this UI's origin (whichever the
 * browser sent; every current browser sends at least one on a POST). A request with
 * neither is refused: it cannot be told apart from a forged one.
 */
export function isSameOriginRequest(c: Context): boolean {
  const site = c.req.header('sec-fetch-site');
  const origin = c.req.header('origin');
  if (site === undefined && origin === undefined) return false;
  if (site !== undefined && site !== 'same-origin') return false;
  return origin === undefined || origin === new URL(c.req.url).origin;
}

/**
 * sameOriginForCookies: the Origin / Sec-Fetch-Site check of every state-changing
 * request (any method but GET, HEAD and OPTIONS, whatever its content type: hono's
 * csrf() checks form posts only, and the queue board's API takes JSON) that could ride
 * on the session cookie. A request carrying its own Authorization header cannot be
 * forged by another site (browsers never add that header cross-site), so scripts and
 * CLIs need no Origin header. A refusal is a 403 HTTPException (the UI renders it).
 */
export function sameOriginForCookies(): MiddlewareHandler {
  return async function sameOriginForCookiesMiddleware(c, next) {
    if (SAFE_METHOD.test(c.req.method) || extractToken(c.req.header('authorization')) || isSameOriginRequest(c)) {
      await next();
      return;
    }
    throw new HTTPException(403, { res: new Response('Forbidden: this request did not come from this UI (Origin check failed).', { status: 403 }) });
  };
}
