// Server errors as messages a person can act on.

import { Code, ConnectError } from "@connectrpc/connect";

export type ErrorKind = "conflict" | "auth" | "input" | "missing" | "server";

export interface Problem {
  kind: ErrorKind;
  title: string;
  detail: string;
  requestId?: string;
}

function sentence(s: string): string {
  const t = s.trim().replace(/\s*\[[\w.]+\]$/, "");
  if (!t) return "";
  const first = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : first + ".";
}

/** describe turns anything a call threw into a readable problem. */
export function describe(err: unknown): Problem {
  const ce = ConnectError.from(err);
  const requestId = ce.metadata.get("x-request-id") ?? undefined;
  const msg = sentence(ce.rawMessage);
  switch (ce.code) {
    case Code.InvalidArgument:
    case Code.OutOfRange:
      return { kind: "input", title: "Please check what you entered", detail: msg, requestId };
    case Code.Unauthenticated:
      return {
        kind: "auth",
        title: "Please sign in again",
        detail: "You are not signed in, or your session has expired.",
        requestId,
      };
    case Code.PermissionDenied:
      return {
        kind: "auth",
        title: "Not allowed",
        detail: "Only moderators may do this. " + msg,
        requestId,
      };
    case Code.NotFound:
      return { kind: "missing", title: "Not found", detail: msg || "It does not exist.", requestId };
    case Code.Aborted:
    case Code.AlreadyExists:
    case Code.FailedPrecondition:
      return { kind: "conflict", title: "Conflict", detail: msg, requestId };
    case Code.ResourceExhausted:
      return { kind: "server", title: "Too many requests", detail: "Wait a moment and try again.", requestId };
    case Code.Canceled:
    case Code.DeadlineExceeded:
      return { kind: "server", title: "The request timed out", detail: "Try again.", requestId };
    case Code.Unavailable:
    case Code.Unknown:
      if (/fetch|network/i.test(ce.rawMessage)) {
        return {
          kind: "server",
          title: "Cannot reach the server",
          detail: "Check your connection and that the server is running, then try again.",
          requestId,
        };
      }
      return { kind: "server", title: "The server is unavailable", detail: "Try again in a moment.", requestId };
    default:
      return {
        kind: "server",
        title: "Something went wrong on the server",
        detail: "Try again in a moment; if it keeps happening, tell us the request id.",
        requestId,
      };
  }
}
