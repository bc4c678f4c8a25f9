// End-to-end test of the web app in Debian's Chromium, driven by
// playwright-core, against the real binary (started by e2e/run.sh).
//
//   BASE_URL   the running server, e.g. http://127.0.0.1:43121
//   ARTIFACTS  folder for screenshots (created)
//   CHROMIUM   the browser (default /usr/bin/chromium)
//
// Flow: a moderator creates a house; a client creates a flat and does not
// see it; the moderator takes it; a second moderator is refused the held
// flat; the first approves it; the client now sees it. Calls made together
// as the access token nears its expiry share one refresh (a second use of a
// refresh token makes the server revoke its family). Every RPC the page
// makes must be gRPC-Web (application/grpc-web+proto or +json).

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const base = process.env.BASE_URL;
const artifacts = process.env.ARTIFACTS ?? "e2e/artifacts";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!base) {
  console.error("e2e: BASE_URL is not set (run web/e2e/run.sh)");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

const flags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let step = 0;
const shots = [];
function log(msg) {
  console.log(`e2e: ${msg}`);
}
function fail(msg) {
  throw new Error(msg);
}

// ---- the browser ------------------------------------------------------------

// Playwright gives launch() its own fresh --user-data-dir; contexts below are
// separate users (separate storage). For the persistent profile we pass our
// own fresh folder, which the issue asks for explicitly.
const profile = mkdtempSync(path.join(tmpdir(), "homes-e2e-profile-"));
const ctx0 = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: flags,
  viewport: { width: 1200, height: 800 },
});
const browser = ctx0.browser() ?? null;
log(`chromium ${browser ? browser.version() : "(persistent context)"} at ${executablePath}, profile ${profile}`);

const rpcs = []; // { who, path, method, contentType, status, responseType }
// Each RPC's record by its request: concurrent calls to one method must not
// share a record. headersRead are the responses' headers being read.
const rpcOf = new WeakMap();
const headersRead = [];
const problems = []; // page errors and console errors

function watch(page, who) {
  page.on("request", (req) => {
    const u = new URL(req.url());
    if (/^\/homes\.[a-z]+\.v1\.[A-Za-z]+Service\//.test(u.pathname)) {
      const rec = { who, path: u.pathname, method: req.method(), contentType: req.headers()["content-type"] ?? "" };
      rpcs.push(rec);
      rpcOf.set(req, rec);
    } else if (u.origin === new URL(base).origin && !(u.pathname === "/" || u.pathname.startsWith("/assets/"))) {
      problems.push(`${who}: unexpected non-RPC request ${req.method()} ${u.pathname}`);
    }
  });
  page.on("response", (res) => {
    const rec = rpcOf.get(res.request());
    if (rec) {
      rec.status = res.status();
      headersRead.push(
        res.allHeaders().then(
          (h) => {
            rec.responseType = h["content-type"] ?? "";
          },
          () => {}, // the page closed: reported as no response seen
        ),
      );
    }
  });
  page.on("pageerror", (err) => problems.push(`${who}: page error: ${err.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`${who}: console error: ${m.text()}`);
  });
  page.setDefaultTimeout(15000);
}

// One tab per user: the app keeps its session in sessionStorage (per tab).
async function user(who) {
  const page = await ctx0.newPage();
  watch(page, who);
  await page.goto(base + "/");
  await page.getByTestId("dummy-client").waitFor();
  return page;
}

async function shot(page, name, what) {
  step++;
  const file = `${String(step).padStart(2, "0")}-${name}.png`;
  await page.screenshot({ path: path.join(artifacts, file), fullPage: true });
  shots.push({ file, what });
  log(`screenshot ${file}: ${what}`);
}

async function text(page, testid) {
  return (await page.getByTestId(testid).first().innerText()).trim();
}

async function signInDummy(page, role) {
  await page.getByTestId(`dummy-${role}`).click();
  await page.getByTestId("who").filter({ hasText: `Signed in as ${role}` }).waitFor();
}

async function statusOf(page, flatId) {
  return (await page.locator(`[data-testid="flat-${flatId}"] [data-testid="status"]`).first().innerText()).trim();
}

async function waitStatus(page, flatId, status) {
  await page.locator(`[data-testid="flat-${flatId}"] [data-testid="status"]`, { hasText: status }).first().waitFor();
}

// ---- the flow ---------------------------------------------------------------

const pages = [];
try {
  // An account through the forms: register, then a duplicate registration.
  const acct = await user("account");
  pages.push(acct);
  await shot(acct, "signin", "sign-in screen: log in, register, dummy login for a role");
  const email = `e2e-${Date.now()}@example.com`;
  await acct.fill("#reg-email", email);
  await acct.fill("#reg-password", "correct horse battery");
  await acct.selectOption("#reg-role", "client");
  await acct.getByTestId("register-form").locator("button[type=submit]").click();
  await acct.getByTestId("who").filter({ hasText: email }).waitFor();
  log(`registered and signed in as ${email}`);
  await acct.getByTestId("sign-out").click();
  await acct.fill("#reg-email", email);
  await acct.fill("#reg-password", "correct horse battery");
  await acct.getByTestId("register-form").locator("button[type=submit]").click();
  await acct.getByTestId("notice-conflict").waitFor();
  const dup = await text(acct, "notice-conflict");
  if (!/already registered/i.test(dup)) fail(`duplicate registration: unexpected message ${JSON.stringify(dup)}`);
  await shot(acct, "register-duplicate", `registering ${email} again: the 409 shown as "Conflict: Email already registered."`);
  await acct.fill("#login-id", email);
  await acct.fill("#login-password", "correct horse battery");
  await acct.getByTestId("login-form").locator("button[type=submit]").click();
  await acct.getByTestId("who").filter({ hasText: `Signed in as client (${email})` }).waitFor();
  log("logged in with email and password");

  // Moderator A creates a house.
  const modA = await user("moderator A");
  pages.push(modA);
  await signInDummy(modA, "moderator");
  await modA.getByTestId("create-house-form").waitFor();
  await shot(modA, "houses-moderator", "houses screen of a moderator: open a house, create a house, recent houses");
  const address = `${Date.now() % 1000} E2E Street`;
  await modA.fill("#house-address", address);
  await modA.fill("#house-year", "2021");
  await modA.fill("#house-developer", "Playwright Builders");
  await modA.getByTestId("create-house-form").locator("button[type=submit]").click();
  await modA.waitForURL(/#\/house\/\d+$/);
  const houseId = Number(new URL(modA.url()).hash.match(/\d+/)[0]);
  await modA.getByTestId("no-flats").waitFor();
  const created = await text(modA, "notice-ok");
  if (!created.includes(address)) fail(`house created notice: ${created}`);
  log(`house ${houseId} created`);
  await shot(modA, "house-created", `moderator A: house #${houseId} "${address}" just created, no flats yet`);

  // A client creates a flat in it and does not see it.
  const client = await user("client");
  pages.push(client);
  await signInDummy(client, "client");
  if ((await client.getByTestId("create-house-form").count()) !== 0) fail("a client is offered the create-house form");
  await client.fill("#open-house-id", String(houseId));
  await client.getByTestId("open-house").click();
  await client.getByTestId("no-flats").waitFor();
  await client.fill("#flat-price", "7500000");
  await client.fill("#flat-rooms", "3");
  await client.getByTestId("create-flat-form").locator("button[type=submit]").click();
  await client.getByTestId("notice-ok").filter({ hasText: "created" }).waitFor();
  const flatMsg = await text(client, "notice-ok");
  const flatId = Number(flatMsg.match(/\(id (\d+)\)/)?.[1]);
  if (!flatId) fail(`flat created notice without an id: ${flatMsg}`);
  await client.getByTestId("no-flats").waitFor();
  if ((await client.getByTestId(`flat-${flatId}`).count()) !== 0) fail("the client sees its unapproved flat");
  log(`client created flat ${flatId}; it does not see it`);
  await shot(client, "house-client-flat-created", `client: flat id ${flatId} created; the list still shows no approved flats`);

  await client.fill("#subscribe-email", `buyer-${Date.now()}@example.com`);
  await client.getByTestId("subscribe-form").locator("button[type=submit]").click();
  await client.getByTestId("notice-ok").filter({ hasText: "Subscribed" }).waitFor();
  await shot(client, "house-client-subscribed", "client: subscribed an email to the house");

  await client.goto(`${base}/#/house/${houseId}/moderation`);
  await client.getByTestId("notice-auth").waitFor();
  await shot(client, "moderation-client-refused", "client opening the moderation screen: only moderators review flats");
  await client.goto(`${base}/#/house/${houseId}`);
  await client.getByTestId("no-flats").waitFor();

  // Moderator A takes it.
  await modA.getByTestId("refresh").click();
  await waitStatus(modA, flatId, "created");
  await modA.getByTestId("to-moderation").click();
  await modA.getByTestId(`take-${flatId}`).waitFor();
  await shot(modA, "moderation-waiting", `moderator A: moderation screen, flat ${flatId} waits for review (status created)`);
  await modA.getByTestId(`take-${flatId}`).click();
  await waitStatus(modA, flatId, "on moderation");
  await modA.locator(`[data-testid="flat-${flatId}"] [data-testid="holder"]`, { hasText: "held by you" }).waitFor();
  await shot(modA, "moderation-taken", `moderator A: took flat ${flatId}: on moderation, held by you`);

  // Moderator B is refused the held flat.
  const modB = await user("moderator B");
  pages.push(modB);
  await signInDummy(modB, "moderator");
  await modB.goto(`${base}/#/house/${houseId}/moderation`);
  await waitStatus(modB, flatId, "on moderation");
  await modB.locator(`[data-testid="flat-${flatId}"] [data-testid="holder"]`, { hasText: "another moderator" }).waitFor();
  await modB.getByTestId(`approve-${flatId}`).click();
  await modB.getByTestId("notice-conflict").waitFor();
  const conflict = await text(modB, "notice-conflict");
  if (!/another moderator/i.test(conflict)) fail(`conflict message: ${conflict}`);
  if ((await statusOf(modB, flatId)) !== "on moderation") fail("moderator B changed a held flat");
  log(`moderator B refused: ${conflict.split("\n")[0]}`);
  await shot(modB, "moderation-conflict", `moderator B: approving flat ${flatId} held by A is refused, shown as a conflict`);

  // Moderator A approves it.
  await modA.getByTestId(`approve-${flatId}`).click();
  await modA.getByTestId("notice-ok").filter({ hasText: "approved" }).waitFor();
  await waitStatus(modA, flatId, "approved");
  await modA.getByTestId("nothing-waiting").waitFor();
  await shot(modA, "moderation-approved", `moderator A: approved flat ${flatId}; nothing waits, it is under Reviewed`);

  // The client now sees it.
  await client.getByTestId("refresh").click();
  await waitStatus(client, flatId, "approved");
  const row = await client.getByTestId(`flat-${flatId}`).innerText();
  if (!row.includes("7,500,000") || !/\b3\b/.test(row)) fail(`client's row: ${row}`);
  log(`client sees flat ${flatId}: ${row.replace(/\s+/g, " ")}`);
  await shot(client, "house-client-sees-flat", `client: flat ${flatId} approved and now listed (3 rooms, 7,500,000)`);

  // A readable error for a house that does not exist.
  await client.goto(`${base}/#/house/999999`);
  await client.getByTestId("notice-missing").waitFor();
  const missing = await text(client, "notice-missing");
  if (!/house 999999 not found/i.test(missing)) fail(`not-found message: ${missing}`);
  await shot(client, "house-not-found", "client opening house 999999: \"Not found: House 999999 not found.\"");

  // Three loads at once while the access token is about to expire (its
  // expiry moved near in the session) share one refresh; a second round
  // renews again with the rotated refresh token, which only works if the
  // first round used the old one once: a reused one revokes the family.
  await acct.goto(`${base}/#/house/${houseId}`);
  await acct.getByTestId(`flat-${flatId}`).waitFor();
  const refreshes = () => rpcs.filter((r) => r.who === "account" && r.path.endsWith("/Refresh")).length;
  const finished = (n) =>
    new Promise((resolve) => {
      let k = 0;
      const on = (req) => {
        if (req.url().endsWith("/GetHouseFlats") && ++k === n) {
          acct.off("requestfinished", on);
          resolve();
        }
      };
      acct.on("requestfinished", on);
    });
  for (const round of [1, 2]) {
    const done = finished(3);
    const before = await acct.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem("homes.session"));
      s.exp = Math.floor(Date.now() / 1000) + 5;
      sessionStorage.setItem("homes.session", JSON.stringify(s));
      const button = document.querySelector('[data-testid="refresh"]');
      for (let i = 0; i < 3; i++) button.click();
      return s.refreshToken;
    });
    await done;
    const after = await acct.evaluate(() => JSON.parse(sessionStorage.getItem("homes.session") ?? "null"));
    if (refreshes() !== round) fail(`round ${round}: ${refreshes()} Refresh calls in all, want ${round}: one per round`);
    if (!after) fail(`round ${round}: signed out: the server refused the refresh`);
    if (after.refreshToken === before) fail(`round ${round}: the refresh token was not rotated`);
    await acct.getByTestId(`flat-${flatId}`).waitFor();
    await acct.getByTestId("who").filter({ hasText: email }).waitFor();
    if ((await acct.getByTestId("notice-auth").count()) !== 0) fail(`round ${round}: ${await text(acct, "notice-auth")}`);
  }
  log("three calls near the token's expiry shared one refresh, twice; still signed in");

  // Every RPC was gRPC-Web.
  await Promise.all(headersRead);
  if (rpcs.length < 10) fail(`only ${rpcs.length} RPCs seen`);
  const bad = rpcs.filter((r) => !/^application\/grpc-web\+(proto|json)$/.test(r.contentType) || r.method !== "POST");
  if (bad.length) fail(`RPCs that were not gRPC-Web:\n${JSON.stringify(bad, null, 2)}`);
  const badRes = rpcs.filter((r) => !/^application\/grpc-web\+(proto|json)/.test(r.responseType ?? "(no response seen)"));
  if (badRes.length) fail(`RPC responses that were not gRPC-Web:\n${JSON.stringify(badRes, null, 2)}`);
  const kinds = [...new Set(rpcs.map((r) => r.contentType))].join(", ");
  const methods = [...new Set(rpcs.map((r) => r.path.split("/").pop()))].sort().join(", ");
  log(`${rpcs.length} RPCs, requests and responses all gRPC-Web (${kinds}): ${methods}`);
  if (problems.length) fail(`browser problems:\n${problems.join("\n")}`);

  log(`PASS: ${shots.length} screenshots in ${artifacts}`);
} catch (err) {
  console.error(`e2e: FAIL: ${err.stack ?? err}`);
  if (problems.length) console.error(`e2e: browser problems:\n${problems.join("\n")}`);
  for (const [i, p] of pages.entries()) {
    await p.screenshot({ path: path.join(artifacts, `FAILED-page${i + 1}.png`), fullPage: true }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  await ctx0.close();
  rmSync(profile, { recursive: true, force: true });
}
