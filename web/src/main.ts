// Home Services in the browser: sign in, houses, flats, moderation.
// Plain DOM, hash routes (#/signin, #/houses, #/house/7, #/house/7/moderation),
// so the server only has to serve / and /assets/.

import "./style.css";
import {
  authClient,
  clearSession,
  heldFlats,
  homeClient,
  loadSession,
  recentHouses,
  rememberHouse,
  saveSession,
  sessionFromToken,
  setHeld,
  whenSignedOut,
  type Role,
  type Session,
} from "./api";
import { describe, type Problem } from "./errors";
import type { Flat } from "./gen/homes/home/v1/home_pb";

// ---- tiny DOM helpers ----------------------------------------------------

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c);
  }
  return el;
}

function field(label: string, input: HTMLInputElement | HTMLSelectElement, hint?: string): HTMLElement {
  return h("label", { class: "field" }, h("span", {}, label), input, hint ? h("small", {}, hint) : null);
}

function input(name: string, attrs: Attrs = {}): HTMLInputElement {
  return h("input", { name, id: name, autocomplete: "off", ...attrs });
}

/** A message box: success, info, or a problem from the server. */
function notice(kind: "ok" | "info" | Problem["kind"], title: string, detail = "", requestId?: string): HTMLElement {
  const role = kind === "ok" || kind === "info" ? "status" : "alert";
  return h(
    "div",
    { class: `notice notice-${kind}`, role, "data-testid": `notice-${kind}` },
    h("strong", {}, title),
    detail ? h("span", {}, " " + detail) : null,
    requestId ? h("small", { class: "reqid" }, `request id ${requestId}`) : null,
  );
}

function problem(err: unknown): HTMLElement {
  const p = describe(err);
  const box = notice(p.kind, p.title + ":", p.detail, p.requestId);
  if (p.kind === "auth" && p.title.startsWith("Please sign in")) {
    box.append(" ", h("a", { href: "#/signin" }, "Sign in"));
  }
  return box;
}

/** Runs an action with its button disabled, showing the outcome in `out`. */
async function run(btn: HTMLButtonElement | null, out: HTMLElement, action: () => Promise<Child>): Promise<boolean> {
  if (btn) btn.disabled = true;
  out.replaceChildren(notice("info", "Working…"));
  try {
    const result = await action();
    out.replaceChildren();
    if (result) out.append(result);
    return true;
  } catch (err) {
    out.replaceChildren(problem(err));
    return false;
  } finally {
    if (btn) btn.disabled = false;
  }
}

function formButton(form: HTMLFormElement): HTMLButtonElement | null {
  return form.querySelector("button[type=submit]");
}

const money = new Intl.NumberFormat("en-US");

function statusBadge(status: string): HTMLElement {
  return h("span", { class: `badge badge-${status.replace(/\s+/g, "-")}`, "data-testid": "status" }, status);
}

// ---- layout ----------------------------------------------------------------

const app = document.getElementById("app") as HTMLElement;
const nav = document.getElementById("nav") as HTMLElement;

function renderNav(s: Session | null): void {
  nav.replaceChildren();
  if (!s) {
    nav.append(h("a", { href: "#/signin" }, "Sign in"));
    return;
  }
  nav.append(
    h("a", { href: "#/houses" }, "Houses"),
    h(
      "span",
      { class: "who", "data-testid": "who" },
      `Signed in as ${s.role}`,
      s.label ? ` (${s.label})` : "",
    ),
    h(
      "button",
      {
        type: "button",
        class: "link",
        "data-testid": "sign-out",
        onclick: () => {
          clearSession();
          location.hash = "#/signin";
        },
      },
      "Sign out",
    ),
  );
}

function screen(title: string, ...children: Child[]): void {
  document.title = `${title} · Home Services`;
  app.replaceChildren(h("h1", {}, title), ...children.filter((c): c is Node | string => !!c));
}

// ---- sign in ---------------------------------------------------------------

function signedIn(s: Session): void {
  saveSession(s);
  location.hash = "#/houses";
}

function signInScreen(): void {
  const out = h("div", { class: "out", "data-testid": "signin-out" });
  if (flash) {
    out.append(flash);
    flash = null;
  }

  const dummy = (role: Role) =>
    h(
      "button",
      {
        type: "button",
        "data-testid": `dummy-${role}`,
        onclick: (ev: Event) =>
          void run(ev.currentTarget as HTMLButtonElement, out, async () => {
            const r = await authClient.dummyLogin({ userType: role });
            signedIn(sessionFromToken(r.token, "dummy login"));
            return null;
          }),
      },
      `Continue as a ${role}`,
    );

  const regEmail = input("reg-email", { type: "email", required: true, placeholder: "you@example.com" });
  const regPass = input("reg-password", { type: "password", required: true, minlength: 8, maxlength: 72 });
  const regRole = h(
    "select",
    { name: "reg-role", id: "reg-role" },
    h("option", { value: "client" }, "client (buyer or seller)"),
    h("option", { value: "moderator" }, "moderator"),
  );
  const register = h(
    "form",
    {
      class: "card",
      "data-testid": "register-form",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        void run(formButton(register), out, async () => {
          const email = regEmail.value.trim();
          await authClient.register({ email, password: regPass.value, userType: regRole.value });
          const r = await authClient.login({ identity: { case: "email", value: email }, password: regPass.value });
          signedIn(sessionFromToken(r.token, email, r.refreshToken));
          return null;
        });
      },
    },
    h("h2", {}, "Create an account"),
    field("Email", regEmail),
    field("Password", regPass, "8 to 72 characters"),
    field("Role", regRole),
    h("button", { type: "submit" }, "Register and sign in"),
  );

  const loginId = input("login-id", { required: true, placeholder: "email or user id" });
  const loginPass = input("login-password", { type: "password", required: true });
  const login = h(
    "form",
    {
      class: "card",
      "data-testid": "login-form",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        void run(formButton(login), out, async () => {
          const who = loginId.value.trim();
          const identity = who.includes("@")
            ? ({ case: "email", value: who } as const)
            : ({ case: "id", value: who } as const);
          const r = await authClient.login({ identity, password: loginPass.value });
          signedIn(sessionFromToken(r.token, who, r.refreshToken));
          return null;
        });
      },
    },
    h("h2", {}, "Sign in"),
    field("Email or user id", loginId),
    field("Password", loginPass),
    h("button", { type: "submit" }, "Sign in"),
  );

  screen(
    "Welcome",
    h("p", { class: "lead" }, "Buyers and sellers see and add flats; moderators review every flat before buyers see it."),
    out,
    h(
      "div",
      { class: "grid" },
      login,
      register,
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Just try it"),
        h("p", {}, "A dummy login gives you a fresh user of the role you pick (when the server allows it)."),
        h("div", { class: "row" }, dummy("client"), dummy("moderator")),
      ),
    ),
  );
}

// ---- houses ----------------------------------------------------------------

function housesScreen(s: Session): void {
  const out = h("div", { class: "out", "data-testid": "houses-out" });

  const openId = input("open-house-id", { type: "number", min: 1, required: true, placeholder: "e.g. 1" });
  const open = h(
    "form",
    {
      class: "card",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        location.hash = `#/house/${Number(openId.value)}`;
      },
    },
    h("h2", {}, "Open a house"),
    field("House id", openId),
    h("button", { type: "submit", "data-testid": "open-house" }, "Open"),
  );

  const recent = recentHouses();
  const recentCard = h(
    "section",
    { class: "card" },
    h("h2", {}, "Recent houses"),
    recent.length
      ? h(
          "ul",
          { class: "plain", "data-testid": "recent-houses" },
          ...recent.map((r) =>
            h("li", {}, h("a", { href: `#/house/${r.id}` }, `House #${r.id}`), r.address ? ` — ${r.address}` : ""),
          ),
        )
      : h("p", { class: "muted" }, "Houses you create or open appear here."),
  );

  let create: HTMLElement | null = null;
  if (s.role === "moderator") {
    const address = input("house-address", { required: true, maxlength: 512, placeholder: "1 Main Street" });
    const year = input("house-year", { type: "number", required: true, value: new Date().getFullYear() });
    const developer = input("house-developer", { maxlength: 256, placeholder: "optional" });
    const form = h(
      "form",
      {
        class: "card",
        "data-testid": "create-house-form",
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          void run(formButton(form), out, async () => {
            const dev = developer.value.trim();
            const r = await homeClient.createHouse({
              address: address.value.trim(),
              year: Number(year.value),
              developer: dev ? dev : undefined,
            });
            const house = r.house!;
            rememberHouse({ id: house.id, address: house.address });
            flash = notice("ok", `House #${house.id} created:`, house.address);
            location.hash = `#/house/${house.id}`;
            return null;
          });
        },
      },
      h("h2", {}, "Create a house"),
      field("Address", address),
      field("Year built", year),
      field("Developer", developer),
      h("button", { type: "submit" }, "Create house"),
    );
    create = form;
  }

  screen("Houses", out, h("div", { class: "grid" }, open, create, recentCard));
}

// ---- a house ---------------------------------------------------------------

/** A message carried over to the next screen (e.g. "house created"). */
let flash: HTMLElement | null = null;

function flatsTable(flats: Flat[], extra?: (f: Flat) => Child[], extraHead?: string[]): HTMLElement {
  return h(
    "table",
    { class: "flats", "data-testid": "flats" },
    h(
      "thead",
      {},
      h("tr", {}, ...["No.", "Flat id", "Rooms", "Price", "Status", ...(extraHead ?? [])].map((t) => h("th", {}, t))),
    ),
    h(
      "tbody",
      {},
      ...flats.map((f) =>
        h(
          "tr",
          { "data-flat-id": f.id, "data-testid": `flat-${f.id}` },
          h("td", {}, String(f.number)),
          h("td", {}, String(f.id)),
          h("td", {}, String(f.rooms)),
          h("td", { class: "num" }, money.format(f.price)),
          h("td", {}, statusBadge(f.status)),
          ...(extra ? extra(f).map((c) => h("td", {}, c)) : []),
        ),
      ),
    ),
  );
}

function houseTitle(id: number): string {
  const known = recentHouses().find((r) => r.id === id);
  return known?.address ? `House #${id} — ${known.address}` : `House #${id}`;
}

async function houseScreen(s: Session, id: number): Promise<void> {
  const out = h("div", { class: "out", "data-testid": "house-out" });
  if (flash) {
    out.append(flash);
    flash = null;
  }
  const list = h("div", { "data-testid": "flats-area" }, h("p", { class: "muted" }, "Loading flats…"));

  const load = async () => {
    try {
      const r = await homeClient.getHouseFlats({ id });
      rememberHouse({ id, address: "" });
      list.replaceChildren(
        r.flats.length
          ? flatsTable(r.flats)
          : h(
              "p",
              { class: "empty", "data-testid": "no-flats" },
              s.role === "client" ? "No approved flats in this house yet." : "This house has no flats yet.",
            ),
      );
    } catch (err) {
      list.replaceChildren(problem(err));
    }
  };

  const price = input("flat-price", { type: "number", min: 0, required: true, placeholder: "5000000" });
  const rooms = input("flat-rooms", { type: "number", min: 1, max: 100, required: true, value: 2 });
  const createFlat = h(
    "form",
    {
      class: "card",
      "data-testid": "create-flat-form",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        void run(formButton(createFlat), out, async () => {
          const r = await homeClient.createFlat({ houseId: id, price: Number(price.value), rooms: Number(rooms.value) });
          const f = r.flat!;
          await load();
          return notice(
            "ok",
            `Flat No. ${f.number} (id ${f.id}) created.`,
            s.role === "client"
              ? "Buyers will see it once a moderator approves it."
              : "It waits for review under Moderation.",
          );
        });
      },
    },
    h("h2", {}, "Add a flat"),
    field("Price", price),
    field("Rooms", rooms),
    h("button", { type: "submit" }, "Create flat"),
  );

  const email = input("subscribe-email", { type: "email", required: true, placeholder: "you@example.com" });
  const subscribe = h(
    "form",
    {
      class: "card",
      "data-testid": "subscribe-form",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        void run(formButton(subscribe), out, async () => {
          await homeClient.subscribe({ id, email: email.value.trim() });
          return notice("ok", "Subscribed:", `${email.value.trim()} gets an email when a new flat appears here.`);
        });
      },
    },
    h("h2", {}, "Get notified"),
    field("Email", email),
    h("button", { type: "submit" }, "Subscribe"),
  );

  screen(
    houseTitle(id),
    h(
      "div",
      { class: "row toolbar" },
      h("button", { type: "button", "data-testid": "refresh", onclick: () => void load() }, "Refresh"),
      s.role === "moderator"
        ? h("a", { class: "button", href: `#/house/${id}/moderation`, "data-testid": "to-moderation" }, "Moderation")
        : null,
      h(
        "span",
        { class: "muted" },
        s.role === "client" ? "You see approved flats only." : "As a moderator you see flats in every status.",
      ),
    ),
    out,
    h("section", { class: "card wide" }, h("h2", {}, "Flats"), list),
    h("div", { class: "grid" }, createFlat, subscribe),
  );
  await load();
}

// ---- moderation ------------------------------------------------------------

async function moderationScreen(s: Session, id: number): Promise<void> {
  if (s.role !== "moderator") {
    screen(
      "Moderation",
      notice("auth", "Not allowed:", "Only moderators review flats. Sign in as a moderator."),
      h("p", {}, h("a", { href: `#/house/${id}` }, "Back to the house")),
    );
    return;
  }
  const out = h("div", { class: "out", "data-testid": "moderation-out" });
  const waiting = h("div", { "data-testid": "waiting" }, h("p", { class: "muted" }, "Loading…"));
  const reviewed = h("div", { "data-testid": "reviewed" });

  const act = (f: Flat, to: string, label: string, testid: string) =>
    h(
      "button",
      {
        type: "button",
        class: to === "declined" ? "danger" : to === "approved" ? "primary" : "",
        "data-testid": `${testid}-${f.id}`,
        onclick: (ev: Event) =>
          void run(ev.currentTarget as HTMLButtonElement, out, async () => {
            try {
              const r = await homeClient.updateFlat({ id: f.id, status: to });
              setHeld(f.id, r.flat!.status === "on moderation");
              await load();
              return notice("ok", `Flat No. ${f.number} (id ${f.id}):`, `now ${r.flat!.status}.`);
            } catch (err) {
              const p = describe(err);
              await load();
              if (p.kind === "conflict") {
                setHeld(f.id, false);
                return notice(
                  "conflict",
                  `Conflict on flat No. ${f.number} (id ${f.id}):`,
                  `${p.detail} Someone else may be reviewing it, or it has moved on; the list is refreshed.`,
                  p.requestId,
                );
              }
              throw err;
            }
          }),
      },
      label,
    );

  const load = async () => {
    try {
      const r = await homeClient.getHouseFlats({ id });
      rememberHouse({ id, address: "" });
      const held = heldFlats();
      const open = r.flats.filter((f) => f.status === "created" || f.status === "on moderation");
      const done = r.flats.filter((f) => !(f.status === "created" || f.status === "on moderation"));
      waiting.replaceChildren(
        open.length
          ? flatsTable(
              open,
              (f) => {
                if (f.status === "created") {
                  return [h("span", { class: "muted" }, "free"), h("span", {}, act(f, "on moderation", "Take", "take"))];
                }
                const mine = held.has(f.id);
                return [
                  mine
                    ? h("span", { class: "held-mine", "data-testid": "holder" }, "held by you")
                    : h("span", { class: "held-other", "data-testid": "holder" }, "held by another moderator"),
                  h(
                    "span",
                    { class: "row" },
                    act(f, "approved", "Approve", "approve"),
                    act(f, "declined", "Decline", "decline"),
                    act(f, "created", "Release", "release"),
                  ),
                ];
              },
              ["Held", "Actions"],
            )
          : h("p", { class: "empty", "data-testid": "nothing-waiting" }, "Nothing waits for review in this house."),
      );
      reviewed.replaceChildren(
        done.length ? flatsTable(done) : h("p", { class: "muted" }, "No flat has been approved or declined yet."),
      );
    } catch (err) {
      waiting.replaceChildren(problem(err));
    }
  };

  screen(
    `Moderation — ${houseTitle(id)}`,
    h(
      "div",
      { class: "row toolbar" },
      h("a", { class: "button", href: `#/house/${id}`, "data-testid": "to-house" }, "Back to the house"),
      h("button", { type: "button", "data-testid": "refresh", onclick: () => void load() }, "Refresh"),
      h(
        "span",
        { class: "muted" },
        "Take a flat to review it; only the moderator who holds it may approve, decline or release it.",
      ),
    ),
    out,
    h("section", { class: "card wide" }, h("h2", {}, "Waiting for review"), waiting),
    h("section", { class: "card wide" }, h("h2", {}, "Reviewed"), reviewed),
  );
  await load();
}

// ---- router ----------------------------------------------------------------

function route(): void {
  const s = loadSession();
  renderNav(s);
  const path = location.hash.replace(/^#/, "") || "/";
  if (path === "/signin" || !s) {
    signInScreen();
    return;
  }
  let m: RegExpMatchArray | null;
  if ((m = path.match(/^\/house\/(\d+)\/moderation$/))) {
    void moderationScreen(s, Number(m[1]));
  } else if ((m = path.match(/^\/house\/(\d+)$/))) {
    void houseScreen(s, Number(m[1]));
  } else {
    housesScreen(s);
  }
}

// A session the server refused to renew is over: back to signing in, saying why.
whenSignedOut(() => {
  flash = notice("auth", "Please sign in again:", "Your session has expired or was ended.");
  if (location.hash === "#/signin") route();
  else location.hash = "#/signin";
});

window.addEventListener("hashchange", route);
route();
