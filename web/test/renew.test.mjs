// Unit test of src/renew.ts (compiled by `npm test` first), in Node's own
// test runner: calls in flight near the token's expiry share one refresh,
// against a fake of the auth service that, like the real one, revokes a
// token's whole family when a refresh token is used twice.

import assert from "node:assert/strict";
import { test } from "node:test";
import { RENEW_LEEWAY, tokenSource } from "../node_modules/.cache/unit/renew.js";

const now = 1_700_000_000;
const soon = now + RENEW_LEEWAY - 1; // expires within the leeway: renew

// fakeAuth is the auth service's refresh: a refresh token is good once; a
// second use revokes the family, after which every token of it is refused.
// mode "down" rejects as a network failure would.
function fakeAuth() {
  const used = new Set();
  const auth = {
    calls: 0,
    revoked: false,
    mode: "up",
    async refresh(refreshToken) {
      auth.calls++;
      await new Promise((r) => setTimeout(r, 5)); // the round trip
      if (auth.mode === "down") throw new Error("Failed to fetch");
      if (auth.revoked || used.has(refreshToken)) {
        auth.revoked = true;
        return null;
      }
      used.add(refreshToken);
      return { token: `access-${auth.calls}`, refreshToken: `refresh-${auth.calls}`, exp: now + 900 };
    },
  };
  return auth;
}

// setup is a tab: its session storage, the fake server and the token source.
function setup(session) {
  const auth = fakeAuth();
  const tab = { stored: session, signOuts: 0 };
  const token = tokenSource({
    load: () => (tab.stored ? { ...tab.stored } : null),
    save: (s) => {
      tab.stored = { ...s };
    },
    refresh: async (s) => {
      const r = await auth.refresh(s.refreshToken);
      return r && { ...s, ...r };
    },
    signOut: () => {
      tab.stored = null;
      tab.signOuts++;
    },
    now: () => now,
  });
  return { auth, tab, token };
}

const signedIn = (exp) => ({ token: "access-0", refreshToken: "refresh-0", exp, label: "a@example.com" });

test("the fake server revokes the family on reuse, as the real one does", async () => {
  const auth = fakeAuth();
  assert.ok(await auth.refresh("refresh-0"));
  assert.equal(await auth.refresh("refresh-0"), null);
  assert.equal(await auth.refresh("refresh-1"), null, "the rotated token is revoked too");
});

test("calls in flight near the expiry share one refresh", async () => {
  const { auth, tab, token } = setup(signedIn(soon));
  const tokens = await Promise.all([token(), token(), token(), token()]);
  assert.deepEqual(tokens, ["access-1", "access-1", "access-1", "access-1"]);
  assert.equal(auth.calls, 1);
  assert.equal(tab.stored.refreshToken, "refresh-1");
  assert.equal(tab.stored.label, "a@example.com");

  // The settled refresh is forgotten: the next expiry refreshes again, with
  // the rotated token, and the family is still alive.
  tab.stored.exp = soon;
  assert.deepEqual(await Promise.all([token(), token()]), ["access-2", "access-2"]);
  assert.equal(auth.calls, 2);
  assert.equal(auth.revoked, false);
  assert.equal(tab.signOuts, 0);
});

test("a token far from its expiry goes as it is", async () => {
  const { auth, token } = setup(signedIn(now + RENEW_LEEWAY));
  assert.deepEqual(await Promise.all([token(), token()]), ["access-0", "access-0"]);
  assert.equal(auth.calls, 0);
});

test("a session without a refresh token (dummy login) is not renewed", async () => {
  const { auth, token } = setup({ token: "dummy", exp: soon });
  assert.equal(await token(), "dummy");
  assert.equal(auth.calls, 0);
});

test("nobody signed in: no token", async () => {
  const { auth, token } = setup(null);
  assert.equal(await token(), undefined);
  assert.equal(auth.calls, 0);
});

test("a refused refresh signs out once, for all the calls that waited", async () => {
  const { auth, tab, token } = setup(signedIn(soon));
  auth.revoked = true;
  assert.deepEqual(await Promise.all([token(), token(), token()]), [undefined, undefined, undefined]);
  assert.equal(auth.calls, 1);
  assert.equal(tab.signOuts, 1);
  assert.equal(tab.stored, null);
  assert.equal(await token(), undefined);
  assert.equal(tab.signOuts, 1);
});

test("an unreachable server keeps the session and the old token; the next call retries", async () => {
  const { auth, tab, token } = setup(signedIn(soon));
  auth.mode = "down";
  assert.deepEqual(await Promise.all([token(), token()]), ["access-0", "access-0"]);
  assert.equal(auth.calls, 1);
  assert.equal(tab.signOuts, 0);
  assert.equal(tab.stored.refreshToken, "refresh-0");
  auth.mode = "up";
  assert.equal(await token(), "access-2");
  assert.equal(auth.calls, 2);
});

test("signing out while the refresh is out is not undone by its answer", async () => {
  const { auth, tab, token } = setup(signedIn(soon));
  const pending = token();
  tab.stored = null; // the user pressed Sign out
  assert.equal(await pending, undefined);
  assert.equal(auth.calls, 1);
  assert.equal(tab.stored, null);
  assert.equal(tab.signOuts, 0);
});
