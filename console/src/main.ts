// The ibmail operator console: plain TypeScript and DOM over the server's own
// REST API (/v1, protojson camelCase). The caller's token lives in
// sessionStorage only, so it goes when the tab closes.
import "./style.css";

type Json = Record<string, any>;

const TOKEN_KEY = "ibmail.token";
const main = document.getElementById("main")!;
const nav = document.getElementById("nav")!;
const statusEl = document.getElementById("status")!;
// Actions the server refused with 403: not offered again this session.
const denied = new Set<string>();

// The caller's role (GET /v1/caller), asked once per sign-in: pages and
// actions above it are not offered. The server checks every call anyway.
const ROLES = ["CALLER_ROLE_READ", "CALLER_ROLE_SEND", "CALLER_ROLE_ADMIN"];
let callerRole: string | null = null;
const can = (need: "read" | "send" | "admin") => ROLES.indexOf(callerRole ?? "CALLER_ROLE_ADMIN") >= ROLES.indexOf("CALLER_ROLE_" + need.toUpperCase());
// allowed is whether an action is offered: the role permits it and the
// server has not refused it.
const allowed = (key: string, need: "read" | "send" | "admin") => can(need) && !denied.has(key);

class ApiError extends Error {
  constructor(public status: number, message: string) { super(message); }
}

async function api(method: string, path: string, body?: unknown): Promise<Json> {
  const headers: Record<string, string> = { Authorization: "Bearer " + (sessionStorage.getItem(TOKEN_KEY) ?? "") };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data: Json = {};
  try { data = text ? JSON.parse(text) : {}; } catch { data = { message: text }; }
  if (!res.ok) throw new ApiError(res.status, String(data.message ?? res.statusText));
  return data;
}

// act runs an action named key; a 403 hides that action from then on.
async function act(key: string, f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) {
      denied.add(key);
      say("Your role may not do this: " + e.message, true);
      route();
      return;
    }
    say(e instanceof Error ? e.message : String(e), true);
  }
}

function say(msg: string, error = false): void {
  statusEl.textContent = msg;
  statusEl.className = error ? "error" : "ok";
}

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Json = {}, ...kids: (Node | string | null | undefined)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) el.append(kid);
  return el;
}

let fieldSeq = 0;
// field is a labelled input; every input of the console has a label.
function field(label: string, attrs: Json = {}): { wrap: HTMLElement; input: HTMLInputElement } {
  const id = "f" + ++fieldSeq;
  const input = h("input", { id, name: attrs.name ?? id, ...attrs });
  return { wrap: h("div", { class: "field" }, h("label", { for: id, text: label }), input), input };
}

function button(text: string, onclick: () => void, attrs: Json = {}): HTMLButtonElement {
  return h("button", { type: "button", onclick, ...attrs }, text);
}

function copyButton(label: string, value: string): HTMLButtonElement {
  return button("Copy " + label, () => { navigator.clipboard?.writeText(value).then(() => say("Copied " + label)).catch(() => say("Copy failed; select the text", true)); });
}

function table(cols: [string, (r: Json) => Node | string][], rows: Json[], caption: string): HTMLElement {
  if (rows.length === 0) return h("p", { text: "No " + caption.toLowerCase() + "." });
  const head = h("tr", {}, ...cols.map(([c]) => h("th", { scope: "col", text: c })));
  const body = rows.map((r) => h("tr", {}, ...cols.map(([c, f]) => h("td", { "data-label": c }, f(r)))));
  return h("div", { class: "scroll" }, h("table", {}, h("caption", { text: caption }), h("thead", {}, head), h("tbody", {}, ...body)));
}

const str = (k: string) => (r: Json) => r[k] === undefined ? "" : String(r[k]);
const when = (k: string) => (r: Json) => r[k] ? new Date(r[k]).toLocaleString() : "";

function page(title: string, ...kids: (Node | null)[]): void {
  main.replaceChildren(h("h1", { text: title }), ...kids.filter((k): k is Node => k !== null));
  document.title = title + " - ibmail console";
  main.focus();
}

// ---- pages ----

function signIn(): void {
  const tok = field("Caller token", { type: "password", autocomplete: "off", required: true });
  const form = h("form", {
    onsubmit: (e: Event) => {
      e.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, tok.input.value.trim());
      denied.clear();
      callerRole = null;
      if (location.hash === "#/") route(); else location.hash = "#/";
    },
  }, tok.wrap, h("button", { type: "submit" }, "Sign in"));
  page("Sign in", h("p", { text: "The token is kept in this tab only (sessionStorage)." }), form);
}

async function connections(): Promise<void> {
  const data = await api("GET", "/v1/connections?pageSize=100");
  const list = (data.connections ?? []) as Json[];
  const out = h("div", { id: "test-result", "aria-live": "polite" });
  const rows = table([
    ["Name", str("displayName")], ["Id", str("id")], ["Base URL", str("baseUrl")], ["API key", str("apiKeyHint")],
    ["Application", str("applicationId")], ["Entity", str("entityId")],
    ["Webhook URLs", (r) => h("span", {}, ...webhookURLs(r).map((u) => h("div", {}, h("code", { text: u }), " ", copyButton("URL", u))))],
    ["Actions", (r) => h("span", { class: "actions" },
      denied.has("test") ? null : button("Test", () => act("test", async () => {
        const t = await api("POST", `/v1/connections/${encodeURIComponent(r.id)}:test`, {});
        out.replaceChildren(h("h2", { text: "Test of " + (r.displayName || r.id) }),
          h("p", { class: t.ok ? "ok" : "error", text: (t.ok ? "OK: " : "Not OK: ") + (t.message ?? t.result) }),
          t.domains?.length ? h("p", { text: "Domains: " + t.domains.map((d: Json) => d.name + (d.blocked ? " (blocked)" : "")).join(", ") }) : "");
      }), { "aria-label": "Test " + (r.displayName || r.id) }),
      denied.has("deleteConnection") ? null : button("Delete", () => act("deleteConnection", async () => {
        if (!confirm("Delete connection " + r.id + "?")) return;
        await api("DELETE", `/v1/connections/${encodeURIComponent(r.id)}`); say("Deleted " + r.id); route();
      }), { "aria-label": "Delete " + (r.displayName || r.id) }))],
  ], list, "Connections");
  const add = denied.has("createConnection") ? null : button("Add connection", () => addConnection());
  page("Connections", add, rows, out);
}

function webhookURLs(c: Json): string[] {
  if (!c.webhookUrl) return [];
  // The connection's URL is its delivery-reports webhook; the tracking and
  // platform-event webhooks sit beside it.
  const base = String(c.webhookUrl);
  const m = base.match(/^(.*)\/delivery-reports(.*)$/);
  return m ? [base, `${m[1]}/tracking-reports${m[2]}`, `${m[1]}/platform-events${m[2]}`] : [base];
}

function addConnection(): void {
  const key = field("API Key", { type: "password", autocomplete: "off", required: true });
  const url = field("Base URL endpoint", { type: "url", required: true, placeholder: "https://xxxxx.api.infobip.com" });
  const app = field("Application ID (optional)");
  const ent = field("Entity ID (optional)");
  const dlg = h("dialog", { "aria-labelledby": "add-title" });
  const form = h("form", {
    onsubmit: (e: Event) => {
      e.preventDefault();
      act("createConnection", async () => {
        const r = await api("POST", "/v1/connections", {
          displayName: new URL(url.input.value).host, apiKey: key.input.value, baseUrl: url.input.value,
          applicationId: app.input.value || undefined, entityId: ent.input.value || undefined,
        });
        dlg.close(); dlg.remove();
        await connections();
        const c = r.connection as Json;
        const secret = String(r.webhookSecret ?? "");
        main.append(h("section", { class: "once", id: "secret" },
          h("h2", { text: "Webhook secret (shown once)" }),
          h("p", {}, h("code", { id: "secret-value", text: secret }), " ", copyButton("secret", secret)),
          ...webhookURLs(c).map((u) => h("p", {}, h("code", { text: u }), " ", copyButton("URL", u)))));
        say("Connection " + c.id + " added");
      });
    },
  }, h("h2", { id: "add-title", text: "Add connection" }), key.wrap, url.wrap, app.wrap, ent.wrap,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply"), button("Cancel", () => { dlg.close(); dlg.remove(); })));
  dlg.append(form);
  document.body.append(dlg);
  dlg.showModal();
  key.input.focus();
}

async function senders(): Promise<void> {
  const data = await api("GET", "/v1/senders?pageSize=100");
  const conns = ((await api("GET", "/v1/connections?pageSize=100")).connections ?? []) as Json[];
  const rows = table([
    ["Id", str("id")], ["From", str("fromAddress")], ["Name", str("fromName")], ["Connection", str("connectionId")], ["Created", when("createTime")],
    ["Actions", (r) => denied.has("deleteSender") ? "" : button("Delete", () => act("deleteSender", async () => {
      if (!confirm("Delete sender " + r.fromAddress + "?")) return;
      await api("DELETE", `/v1/senders/${encodeURIComponent(r.id)}`); route();
    }), { "aria-label": "Delete " + r.fromAddress })],
  ], data.senders ?? [], "Sender accounts");
  let form: HTMLElement | null = null;
  if (!denied.has("createSender")) {
    const sel = h("select", { id: "sender-conn", required: true }, ...conns.map((c) => h("option", { value: c.id, text: c.displayName || c.id })));
    const from = field("From address", { type: "email", required: true });
    const name = field("From name");
    form = h("form", {
      onsubmit: (e: Event) => { e.preventDefault(); act("createSender", async () => {
        await api("POST", "/v1/senders", { connectionId: sel.value, fromAddress: from.input.value, fromName: name.input.value || undefined });
        say("Sender added"); route();
      }); },
    }, h("h2", { text: "New sender account" }), h("div", { class: "field" }, h("label", { for: "sender-conn", text: "Connection" }), sel), from.wrap, name.wrap, h("button", { type: "submit" }, "Create sender"));
  }
  page("Sender accounts", rows, form);
}

function progress(s: Json): HTMLElement {
  const n = Number(s.recipientCount ?? 0);
  const parts: [string, number][] = [["pending", s.pendingCount], ["accepted", s.acceptedCount], ["rejected", s.rejectedCount], ["suppressed", s.suppressedCount], ["failed", s.failedCount]].map(([k, v]) => [k as string, Number(v ?? 0)]);
  const bar = h("div", { class: "bar", role: "img", "aria-label": parts.map(([k, v]) => `${v} ${k}`).join(", ") },
    ...parts.filter(([, v]) => v > 0).map(([k, v]) => {
      // Set through the CSSOM: the CSP (style-src 'self') refuses style attributes.
      const seg = h("span", { class: "seg " + k });
      seg.style.width = `${n ? (100 * v) / n : 0}%`;
      return seg;
    }));
  return h("div", {}, bar, h("small", { text: parts.map(([k, v]) => `${k} ${v}`).join(" · ") + ` of ${n}` }));
}

async function sends(): Promise<void> {
  const data = await api("GET", "/v1/sends?pageSize=100");
  const rows = table([
    ["Send", (r) => h("a", { href: "#/sends/" + encodeURIComponent(r.id), text: r.subject || r.id })],
    ["State", (r) => String(r.state ?? "").replace("SEND_STATE_", "").toLowerCase()], ["Progress", progress], ["Created", when("createTime")],
  ], data.sends ?? [], "Sends");
  let form: HTMLElement | null = null;
  let snd: Json[] = [];
  if (!denied.has("createSend")) {
    try {
      snd = ((await api("GET", "/v1/senders?pageSize=100")).senders ?? []) as Json[];
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 403)) throw e;
      denied.add("createSend"); // who may not see the senders may not send
    }
  }
  if (!denied.has("createSend")) {
    const sel = h("select", { id: "send-sender", required: true }, ...snd.map((s) => h("option", { value: s.id, text: s.fromAddress })));
    const subj = field("Subject", { required: true });
    const text = field("Text", { required: true });
    const rcpt = field("Recipients (comma separated)", { required: true });
    form = h("form", {
      onsubmit: (e: Event) => { e.preventDefault(); act("createSend", async () => {
        const recipients = rcpt.input.value.split(",").map((x) => x.trim()).filter(Boolean).map((email) => ({ profileId: email, email }));
        await api("POST", "/v1/sends", { senderId: sel.value, subject: subj.input.value, text: text.input.value, recipients });
        say("Send created"); route();
      }); },
    }, h("h2", { text: "New send" }), h("div", { class: "field" }, h("label", { for: "send-sender", text: "Sender" }), sel), subj.wrap, text.wrap, rcpt.wrap, h("button", { type: "submit" }, "Send"));
  }
  page("Sends", rows, form);
}

async function sendDetail(id: string): Promise<void> {
  const s = (await api("GET", `/v1/sends/${encodeURIComponent(id)}`)).send as Json;
  const r = await api("GET", `/v1/sends/${encodeURIComponent(id)}/recipients?pageSize=1000`);
  page("Send " + (s.subject || id), progress(s), table([
    ["Email", (x) => h("a", { href: "#/profile/" + encodeURIComponent(x.email ?? x.profileId), text: x.email })],
    ["Profile", str("profileId")], ["State", (x) => String(x.state ?? "").replace("RECIPIENT_STATE_", "").toLowerCase()], ["Detail", (x) => String(x.error ?? x.reason ?? x.messageId ?? "")],
  ], (r.recipients ?? []) as Json[], "Recipients"));
}

async function profile(id: string, token = "", filter = "", withRetracted = false): Promise<void> {
  const idf = field("Profile id or address", { value: id, required: true });
  const ev = field("Only events (comma separated, optional)", { value: filter });
  const retracted = field("Include retracted events", { type: "checkbox", checked: withRetracted });
  const form = h("form", {
    onsubmit: (e: Event) => {
      e.preventDefault();
      const q = new URLSearchParams();
      if (ev.input.value) q.set("events", ev.input.value);
      if (retracted.input.checked) q.set("retracted", "1");
      location.hash = "#/profile/" + encodeURIComponent(idf.input.value.trim()) + (q.size ? "?" + q : "");
    },
  }, idf.wrap, ev.wrap, retracted.wrap, h("button", { type: "submit" }, "Show"));
  if (!id) { page("Profile card", form); return; }
  const q = new URLSearchParams({ pageSize: "50" });
  if (token) q.set("pageToken", token);
  if (withRetracted) q.set("includeRetracted", "true");
  for (const n of filter.split(",").map((x) => x.trim()).filter(Boolean)) q.append("eventNames", n);
  const data = await api("GET", `/v1/profiles/${encodeURIComponent(id)}/events?${q}`);
  const events = (data.events ?? []) as Json[];
  const list = table([
    ["Time", when("time")], ["Event", str("action")], ["Email", str("email")],
    ["Params", (r) => h("dl", { class: "params" }, ...Object.entries(r.params ?? {}).flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: String(v) })]))],
    ["Rules", (r) => "v" + String(r.rulesVersion ?? "0")],
    ["Retracted", (r) => r.retraction ? `by ${r.retraction.operation} (rules v${r.retraction.rulesVersion ?? 0})` : ""],
  ], events, "Activity (newest first)" + (filter ? ": " + filter : "") + (withRetracted ? ", with retracted events" : ""));
  const more = data.nextPageToken ? button("Older events", () => profile(id, data.nextPageToken, filter, withRetracted)) : null;
  page("Profile card", form, h("h2", { text: id }), list, more);
}

async function segments(): Promise<void> {
  const ev = field("Events (comma separated)", { value: "newsletter.hardbounce", required: true });
  const since = field("Since", { type: "datetime-local" });
  const until = field("Until", { type: "datetime-local" });
  const out = h("div", { id: "segment-result" });
  const search = async (): Promise<Json[]> => {
    const all: Json[] = [];
    let token = "";
    do {
      const body: Json = { eventNames: ev.input.value.split(",").map((x) => x.trim()).filter(Boolean), pageSize: 1000, pageToken: token || undefined };
      if (since.input.value) body.since = new Date(since.input.value).toISOString();
      if (until.input.value) body.until = new Date(until.input.value).toISOString();
      const r = await api("POST", "/v1/profiles:search", body);
      all.push(...(r.profiles ?? []));
      token = r.nextPageToken ?? "";
    } while (token && all.length < 100000);
    return all;
  };
  let last: Json[] = [];
  const form = h("form", {
    onsubmit: (e: Event) => { e.preventDefault(); act("search", async () => {
      last = await search();
      out.replaceChildren(h("p", { text: `${last.length} profiles` }), table([
        ["Profile", (r) => h("a", { href: "#/profile/" + encodeURIComponent(r.profileId), text: r.profileId })], ["Email", str("email")], ["Events", str("eventCount")],
      ], last, "Profiles"), button("Export CSV", () => {
        const esc = (v: unknown) => '"' + String(v ?? "").replace(/"/g, '""') + '"';
        const csv = "profile_id,email,event_count\n" + last.map((r) => [r.profileId, r.email, r.eventCount].map(esc).join(",")).join("\n") + "\n";
        download("segment.csv", "text/csv", csv);
      }));
    }); },
  }, ev.wrap, since.wrap, until.wrap, h("button", { type: "submit" }, "Find profiles"));
  page("Segmentation", form, out);
}

// download saves text the browser fetched as a file.
function download(name: string, type: string, text: string): void {
  const a = h("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a); a.click(); a.remove();
}

async function suppressions(): Promise<void> {
  const data = await api("GET", "/v1/suppressions?pageSize=1000");
  const exportButton = button("Export CSV", () => act("exportSuppressions", async () => {
    const res = await fetch("/v1/suppressions:export?format=csv", { headers: { Authorization: "Bearer " + (sessionStorage.getItem(TOKEN_KEY) ?? "") } });
    const text = await res.text();
    if (!res.ok) { let m = text; try { m = JSON.parse(text).message ?? text; } catch { /* not JSON */ } throw new ApiError(res.status, m); }
    download("suppressions.csv", "text/csv", text);
    say("Exported the suppression list");
  }));
  const file = field("Suppression list (CSV with an email column, or JSON)", { type: "file", accept: ".csv,.json,text/csv,application/json", required: true });
  const reason = field("Reason for lines without one", { value: "imported" });
  const importResult = h("div", { id: "import-result", role: "status" });
  const importForm = h("form", {
    onsubmit: (e: Event) => { e.preventDefault(); act("importSuppressions", async () => {
      const f = file.input.files?.[0];
      if (!f) return;
      const bytes = new Uint8Array(await f.arrayBuffer());
      let bin = "";
      for (const b of bytes) bin += String.fromCharCode(b);
      const json = /\.json$/i.test(f.name) || f.type === "application/json";
      const r = await api("POST", "/v1/suppressions:import", { format: json ? "SUPPRESSION_FORMAT_JSON" : "SUPPRESSION_FORMAT_CSV", content: btoa(bin), defaultReason: reason.input.value });
      const errors = (r.errors ?? []) as Json[];
      importResult.replaceChildren(h("p", { class: errors.length ? "error" : "ok", text: `${r.imported ?? 0} imported, ${r.alreadySuppressed ?? 0} already suppressed, ${r.refused ?? errors.length} lines refused` }),
        table([["Line", str("line")], ["Field", str("field")], ["Problem", str("description")]], errors, "Refused lines"));
    }); },
  }, h("h2", { text: "Import" }), file.wrap, reason.wrap, h("button", { type: "submit" }, "Import"), importResult);
  page("Suppressions", !allowed("exportSuppressions", "admin") ? null : exportButton, table([
    ["Email", (r) => h("a", { href: "#/profile/" + encodeURIComponent(r.email), text: r.email })], ["Profile", str("profileId")], ["Event", str("eventName")], ["Reason", str("reason")],
    ["Actions", (r) => !allowed("deleteSuppression", "admin") ? "" : button("Remove", () => act("deleteSuppression", async () => {
      if (!confirm("Remove the suppression of " + r.email + "?")) return;
      await api("DELETE", `/v1/suppressions/${encodeURIComponent(r.email)}`); route();
    }), { "aria-label": "Remove suppression of " + r.email })],
    ["Expires", (r) => r.expireTime ? new Date(r.expireTime).toLocaleString() : "never"],
  ], data.suppressions ?? [], "Suppressions"), !allowed("importSuppressions", "admin") ? null : importForm);
}

// suggestedRule is the rule that would classify an unclassified report:
// its error group, and its error name, as a rules file writes it; a
// permanent error is a hard bounce, any other a soft one.
function suggestedRule(rep: Json): string {
  const e = (rep.error ?? {}) as Json;
  const event = e.permanent ? "newsletter.hardbounce" : "newsletter.softbounce";
  const names = e.name ? `, errorNames: [${e.name}]` : "";
  return `{groupId: ${e.groupId ?? 0}, groupName: ${e.groupName ?? "?"}${names}, event: ${event}}`;
}

async function attention(): Promise<void> {
  const reports = await api("GET", "/v1/deliveryReports?pageSize=100&outcome=REPORT_OUTCOME_UNCLASSIFIED");
  const rejected = await api("GET", "/v1/rejectedPayloads?pageSize=100");
  page("Attention",
    table([["Received", when("receiveTime")], ["Message", (r) => String(r.report?.messageId ?? "")], ["To", (r) => String(r.report?.to ?? "")],
      ["Error", (r) => [r.report?.error?.id, r.report?.error?.name, r.report?.error?.groupName].filter((x) => x !== undefined).join(" ")],
      ["Profile", (r) => r.profileId ? h("a", { href: "#/profile/" + encodeURIComponent(r.profileId), text: r.profileId }) : ""],
      ["Rule that would cover it", (r) => h("code", { text: suggestedRule(r.report ?? {}) })]],
    (reports.reports ?? []) as Json[], "Unclassified reports"),
    h("p", {}, "Add the rule on the ", h("a", { href: "#/rules", text: "Rules" }), " page (or with ibmailctl rules set), then reclassify the unclassified reports."),
    table([["Id", str("id")], ["Received", when("receiveTime")], ["Content type", str("contentType")], ["Reason", str("reason")],
      ["Size", (r) => String(r.bodyBytes ?? "") + (r.bodyTruncated ? " (truncated)" : "")]], (rejected.payloads ?? []) as Json[], "Rejected payloads"));
}

// days renders a protojson duration ("2592000s") in days or hours.
const days = (d: unknown) => { const n = parseFloat(String(d ?? "0")); return n % 86400 === 0 ? `${n / 86400} days` : `${(n / 3600).toFixed(1)} hours`; };

const outcomeText = (c: Json | undefined) => [String(c?.outcome ?? "").replace("REPORT_OUTCOME_", "").toLowerCase(), c?.eventName].filter(Boolean).join(" ");

function operationView(op: Json): HTMLElement {
  const m = (op.reclassifyMetadata ?? {}) as Json;
  const c = ((op.reclassifyResult ?? {}).counts ?? m.counts ?? {}) as Json;
  const state = !op.done ? "running" : op.error ? "failed: " + op.error.message : "done";
  const names: [string, string][] = [["examined", "Examined"], ["unchanged", "Unchanged"], ["changed", "Changed"], ["eventsAdded", "Events added"],
    ["eventsRetracted", "Events retracted"], ["suppressionsAdded", "Suppressions added"], ["suppressionsLifted", "Suppressions lifted"]];
  return h("div", { id: "operation-result" },
    h("p", { class: op.error ? "error" : "ok", text: `${op.name}: ${state}${m.dryRun ? " (dry run: nothing written)" : ""}, rules version ${m.rulesVersion ?? 0}` }),
    h("dl", { class: "params" }, ...names.flatMap(([k, t]) => [h("dt", { text: t }), h("dd", { text: String(c[k] ?? 0) })])),
    table([["Report", str("report")], ["Profile", (r) => r.profileId ? h("a", { href: "#/profile/" + encodeURIComponent(r.profileId) + "?retracted=1", text: r.profileId }) : ""],
      ["Before", (r) => outcomeText(r.before)], ["After", (r) => outcomeText(r.after)]], (op.reclassifyResult?.sample ?? []) as Json[], "Changes (sample)"));
}

async function rulesPage(): Promise<void> {
  const cur = ((await api("GET", "/v1/rules")).rules ?? {}) as Json;
  const set = (cur.rules ?? {}) as Json;
  const source = String(cur.source ?? "").replace("RULE_SOURCE_", "").toLowerCase();
  const versions = await api("GET", "/v1/rules/versions?pageSize=20");
  const ops = await api("GET", "/v1/operations?pageSize=20").catch(() => ({ operations: [] }));
  const pol = (set.softBouncePolicy ?? {}) as Json;
  const result = h("div", { id: "reclassify-result", role: "status" });
  const onlyUnclassified = field("Only unclassified reports", { type: "checkbox", checked: true });
  const dry = field("Dry run (count what would change, write nothing)", { type: "checkbox", checked: true });
  const form = h("form", {
    onsubmit: (e: Event) => { e.preventDefault(); act("reclassify", async () => {
      const body: Json = { dryRun: dry.input.checked };
      if (onlyUnclassified.input.checked) body.outcomes = ["REPORT_OUTCOME_UNCLASSIFIED"];
      let op = (await api("POST", "/v1/deliveryReports:reclassify", body)).operation as Json;
      result.replaceChildren(operationView(op));
      for (let i = 0; !op.done && i < 600; i++) {
        await new Promise((r) => setTimeout(r, 500));
        op = (await api("GET", "/v1/" + op.name)).operation as Json;
        result.replaceChildren(operationView(op));
      }
    }); },
  }, h("h2", { text: "Reclassify stored reports" }),
  h("p", { text: "Runs the rules in force over the reports already stored. An event that no longer applies is retracted, never deleted; consumers are told." }),
  onlyUnclassified.wrap, dry.wrap, h("button", { type: "submit" }, "Reclassify"), result);
  page("Rules",
    h("p", { text: `Version ${cur.version ?? 0} (${source})` + (cur.createdBy ? `, set by ${cur.createdBy} at ${new Date(cur.createTime).toLocaleString()}` : "") + (cur.comment ? `: ${cur.comment}` : "") }),
    table([["Group", (r) => `${r.groupId ?? ""} ${r.groupName ?? ""}`], ["Error names", (r) => (r.errorNames ?? []).join(", ")], ["Event", str("event")]], (set.rules ?? []) as Json[], "Delivery report rules (first match wins)"),
    table([["Notification", str("notificationType")], ["Event", str("event")], ["Suppress", str("suppress")]], (set.trackingRules ?? []) as Json[], "Tracking report rules"),
    h("p", { text: Number(pol.limit ?? 0) > 0 ? `Soft-bounce limit: ${pol.limit} soft bounces within ${days(pol.window)}, with no delivery between them` : "Soft-bounce limit: off" }),
    !allowed("reclassify", "admin") ? null : form,
    table([["Version", str("version")], ["Created", when("createTime")], ["By", str("createdBy")], ["Comment", str("comment")],
      ["Actions", (r) => !allowed("restore", "admin") || source === "file" || String(r.version) === String(cur.version) ? "" : button("Restore", () => act("restore", async () => {
        if (!confirm(`Put version ${r.version}'s rules in force again?`)) return;
        await api("POST", `/v1/rules/versions/${encodeURIComponent(r.version)}:restore`, { comment: "restored from the console" });
        say("Restored version " + r.version); route();
      }), { "aria-label": "Restore version " + r.version })]], (versions.versions ?? []) as Json[], "Stored versions"),
    table([["Operation", str("name")], ["State", (r) => !r.done ? "running" : r.error ? "failed" : "done"], ["Dry run", (r) => r.reclassifyMetadata?.dryRun ? "yes" : "no"],
      ["Examined", (r) => String(r.reclassifyMetadata?.counts?.examined ?? 0)], ["Changed", (r) => String(r.reclassifyMetadata?.counts?.changed ?? 0)],
      ["Created", (r) => r.reclassifyMetadata?.createTime ? new Date(r.reclassifyMetadata.createTime).toLocaleString() : ""]], (ops.operations ?? []) as Json[], "Reclassifications"));
}

async function domains(): Promise<void> {
  const data = await api("GET", "/v1/sendingDomains?pageSize=1000");
  page("Sending domains", table([
    ["Domain", str("domain")], ["State", (r) => String(r.state ?? "").replace("SENDING_DOMAIN_STATE_", "").toLowerCase()], ["Reason", str("reason")],
    ["Bounce rate", (r) => Object.entries(r).filter(([k]) => /BounceRate$/.test(k)).map(([k, v]) => `${k.replace(/BounceRate$/, "")} ${Number(v).toFixed(2)}%`).join(", ")],
    ["Actions", (r) => !allowed("unblock", "admin") || /ACTIVE/.test(String(r.state)) ? "" : button("Unblock", () => act("unblock", async () => {
      await api("POST", `/v1/sendingDomains/${encodeURIComponent(r.domain)}:unblock`, {}); say("Unblocked " + r.domain); route();
    }), { "aria-label": "Unblock " + r.domain })],
  ], data.sendingDomains ?? [], "Sending domains"));
}

// ---- routing ----

// The pages, each with the role its data needs.
const pages: [string, string, "read" | "send" | "admin"][] = [["connections", "Connections", "admin"], ["senders", "Sender accounts", "admin"],
  ["sends", "Sends", "send"], ["profile", "Profile card", "read"], ["segments", "Segmentation", "read"], ["suppressions", "Suppressions", "admin"],
  ["attention", "Attention", "read"], ["rules", "Rules", "read"], ["domains", "Sending domains", "read"]];

async function route(): Promise<void> {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, ...rest] = path.split("/");
  const arg = decodeURIComponent(rest.join("/"));
  const signedIn = !!sessionStorage.getItem(TOKEN_KEY);
  if (signedIn && callerRole === null && name !== "signin") {
    try {
      callerRole = String((await api("GET", "/v1/caller")).role ?? "CALLER_ROLE_READ");
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) { sessionStorage.removeItem(TOKEN_KEY); nav.replaceChildren(); say("Sign in again: " + e.message, true); signIn(); return; }
      callerRole = "CALLER_ROLE_READ"; // offer the least; the server decides anyway
    }
  }
  const offered = pages.filter(([, , need]) => can(need));
  nav.replaceChildren(...(signedIn ? [...offered.map(([k, t]) => h("a", { href: "#/" + k, "aria-current": k === name ? "page" : undefined, text: t })),
    button("Sign out", () => { sessionStorage.removeItem(TOKEN_KEY); callerRole = null; location.hash = "#/signin"; })] : []));
  if (!signedIn || name === "signin") { signIn(); return; }
  const target = pages.find(([k]) => k === name);
  if (!name || !target) { location.replace("#/" + (offered[0]?.[0] ?? "profile")); return; }
  if (!can(target[2])) { page("Not for your role", h("p", { class: "error", text: `Your role may not see this page: it needs ${target[2]}.` })); return; }
  try {
    switch (name) {
      case "senders": await senders(); break;
      case "sends": await (arg ? sendDetail(arg) : sends()); break;
      case "profile": {
        const q = new URLSearchParams(query ?? "");
        await profile(arg, "", q.get("events") ?? "", q.get("retracted") === "1");
        break;
      }
      case "rules": await rulesPage(); break;
      case "segments": await segments(); break;
      case "suppressions": await suppressions(); break;
      case "attention": await attention(); break;
      case "domains": await domains(); break;
      default: await connections();
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { sessionStorage.removeItem(TOKEN_KEY); say("Sign in again: " + e.message, true); signIn(); return; }
    if (e instanceof ApiError && e.status === 403) { page("Not for your role", h("p", { class: "error", text: "Your role may not see this page: " + e.message })); return; }
    page("Error", h("p", { class: "error", text: e instanceof Error ? e.message : String(e) }));
  }
}

// A message belongs to the page it was said on.
window.addEventListener("hashchange", () => { say(""); route(); });
route();
