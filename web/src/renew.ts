// Renewing the access token before it expires, once for every call in
// flight. A refresh token is good for one use: the server rotates it, and a
// second use looks like a stolen token, so the server revokes the whole
// family and the user is signed out (DESIGN.md). Calls made together near
// the expiry therefore share one refresh (single flight) and its outcome.
//
// No imports: the unit test (test/renew.test.mjs) runs this file in Node.

/** What renewing needs of a session. */
export interface Renewable {
  token: string;
  refreshToken?: string;
  /** Access token expiry, seconds since the epoch (0 when unknown). */
  exp: number;
}

export interface RenewDeps<S extends Renewable> {
  /** The signed-in session, or null. */
  load(): S | null;
  save(s: S): void;
  /**
   * Exchanges the session's refresh token for a new session. Resolves null
   * when the server refuses it (expired, revoked, reused): the session is
   * over. Rejects when the server could not be asked (network, outage).
   */
  refresh(s: S): Promise<S | null>;
  /** Ends the session the server refused to renew. */
  signOut(): void;
  /** Seconds since the epoch. */
  now(): number;
}

/** How long before the expiry a token is renewed, in seconds. */
export const RENEW_LEEWAY = 30;

/**
 * tokenSource returns a function that answers the access token to send,
 * renewing it first when it expires within RENEW_LEEWAY seconds and the
 * session has a refresh token (dummy-login tokens are not renewable). It
 * answers undefined when nobody is signed in.
 *
 * Concurrent callers share one refresh, forgotten when it settles, so the
 * next expiry refreshes again. When the server refuses the refresh token,
 * the session is signed out once, however many calls waited on it, and they
 * all go out without a token (and fail with Unauthenticated). When the
 * server cannot be reached, the session stays and the calls send the old
 * token, still valid for a few seconds; the next call tries again.
 */
export function tokenSource<S extends Renewable>(deps: RenewDeps<S>): () => Promise<string | undefined> {
  let inFlight: Promise<string | undefined> | null = null;

  const renew = async (s: S): Promise<string | undefined> => {
    let next: S | null | undefined; // undefined: the server was not reached
    try {
      next = await deps.refresh(s);
    } catch {
      next = undefined;
    }
    const current = deps.load();
    if (!current || current.refreshToken !== s.refreshToken) {
      // Signed out, or in as someone else, while the refresh was out:
      // leave that session alone.
      return current?.token;
    }
    if (next === undefined) return current.token;
    if (next === null) {
      deps.signOut();
      return undefined;
    }
    deps.save(next);
    return next.token;
  };

  return () => {
    const s = deps.load();
    if (!s) return Promise.resolve(undefined);
    if (!s.refreshToken || !s.exp || s.exp - deps.now() >= RENEW_LEEWAY) return Promise.resolve(s.token);
    inFlight ??= renew(s).finally(() => {
      inFlight = null;
    });
    return inFlight;
  };
}
