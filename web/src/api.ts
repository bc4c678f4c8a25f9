// The clients of the two services, over the gRPC-Web transport (binary
// protobuf, application/grpc-web+proto) to the origin that served this page,
// and the signed-in session.

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AuthService } from "./gen/homes/auth/v1/auth_pb";
import { HomeService } from "./gen/homes/home/v1/home_pb";
import { tokenSource } from "./renew";

export type Role = "client" | "moderator";

export interface Session {
  token: string;
  refreshToken?: string;
  role: Role;
  userId: string;
  /** How the user signed in, for the top bar: an email or "dummy login". */
  label: string;
  /** Access token expiry, seconds since the epoch (0 when unknown). */
  exp: number;
}

// sessionStorage: each tab is its own session, so two tabs can be two
// moderators.
const SESSION_KEY = "homes.session";

export function loadSession(): Session | null {
  const raw = sessionStorage.getItem(SESSION_KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as Session;
  } catch {
    return null;
  }
}

export function saveSession(s: Session): void {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
}

export function clearSession(): void {
  sessionStorage.removeItem(SESSION_KEY);
  sessionStorage.removeItem(HELD_KEY);
}

/** The claims of an access token this app needs (not verified: the server does that). */
export function tokenClaims(token: string): { role: Role; sub: string; exp: number } {
  const part = token.split(".")[1] ?? "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
  const c = JSON.parse(json) as { role?: string; sub?: string; exp?: number };
  if (c.role !== "client" && c.role !== "moderator") {
    throw new Error("the server issued a token without a known role");
  }
  return { role: c.role, sub: c.sub ?? "", exp: c.exp ?? 0 };
}

export function sessionFromToken(token: string, label: string, refreshToken?: string): Session {
  const c = tokenClaims(token);
  return { token, refreshToken, role: c.role, userId: c.sub, label, exp: c.exp };
}

const baseUrl = window.location.origin;

export const authClient = createClient(
  AuthService,
  createGrpcWebTransport({ baseUrl, useBinaryFormat: true }),
);

let signedOut: () => void = () => {};

/** whenSignedOut sets what happens when the server refuses to renew the session. */
export function whenSignedOut(fn: () => void): void {
  signedOut = fn;
}

// The access token for each call, renewed shortly before it expires when the
// session has a refresh token (register + log in), once for all the calls in
// flight (see renew.ts: the server revokes a refresh token used twice).
const freshToken = tokenSource<Session>({
  load: loadSession,
  save: saveSession,
  refresh: async (s) => {
    try {
      const r = await authClient.refresh({ refreshToken: s.refreshToken });
      return sessionFromToken(r.token, s.label, r.refreshToken);
    } catch (err) {
      // Unauthenticated: the refresh token is expired, revoked or reused.
      if (ConnectError.from(err).code === Code.Unauthenticated) return null;
      throw err;
    }
  },
  signOut: () => {
    clearSession();
    signedOut();
  },
  now: () => Date.now() / 1000,
});

const bearer: Interceptor = (next) => async (req) => {
  const token = await freshToken();
  if (token) req.header.set("Authorization", `Bearer ${token}`);
  return next(req);
};

export const homeClient = createClient(
  HomeService,
  createGrpcWebTransport({ baseUrl, useBinaryFormat: true, interceptors: [bearer] }),
);

// Flats this session took for moderation. The API does not say who holds a
// flat, so the app remembers what it took, to offer the right buttons.
const HELD_KEY = "homes.held";

export function heldFlats(): Set<number> {
  try {
    return new Set(JSON.parse(sessionStorage.getItem(HELD_KEY) ?? "[]") as number[]);
  } catch {
    return new Set();
  }
}

export function setHeld(flatId: number, held: boolean): void {
  const s = heldFlats();
  if (held) s.add(flatId);
  else s.delete(flatId);
  sessionStorage.setItem(HELD_KEY, JSON.stringify([...s]));
}

// Houses this browser created or opened: there is no "list houses" call.
const RECENT_KEY = "homes.recentHouses";

export interface RecentHouse {
  id: number;
  address: string;
}

export function recentHouses(): RecentHouse[] {
  try {
    return JSON.parse(localStorage.getItem(RECENT_KEY) ?? "[]") as RecentHouse[];
  } catch {
    return [];
  }
}

export function rememberHouse(h: RecentHouse): void {
  const list = recentHouses().filter((x) => x.id !== h.id);
  const prev = recentHouses().find((x) => x.id === h.id);
  list.unshift({ id: h.id, address: h.address || prev?.address || "" });
  localStorage.setItem(RECENT_KEY, JSON.stringify(list.slice(0, 12)));
}
