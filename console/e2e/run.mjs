// End-to-end test of the operator console in Debian's headless Chromium
// (playwright-core, no downloaded browser), against a real ibmaild whose
// Infobip is the sandbox. Driven by TestConsoleE2E in server/; it passes
// CONSOLE_URL, SANDBOX_URL, SANDBOX_KEY and SHOTS (where screenshots go).
import { chromium } from "playwright-core";

const { CONSOLE_URL, SANDBOX_URL, SANDBOX_KEY, SHOTS, ADMIN_TOKEN, READ_TOKEN } = process.env;
if (!CONSOLE_URL || !SANDBOX_URL || !SANDBOX_KEY || !SHOTS) throw new Error("CONSOLE_URL, SANDBOX_URL, SANDBOX_KEY and SHOTS are required");

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
const page = await ctx.newPage();
const problems = [];
page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
page.on("dialog", (d) => d.accept());
page.on("pageerror", (e) => problems.push(String(e)));
const shot = (name) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
const step = (s) => console.log("step:", s);

step("sign in");
await page.goto(CONSOLE_URL + "/console/");
await page.getByLabel("Caller token").fill(ADMIN_TOKEN);
await shot("signin");
await page.getByRole("button", { name: "Sign in" }).click();
await page.getByRole("heading", { name: "Connections" }).waitFor();

step("add a connection");
await page.getByRole("button", { name: "Add connection" }).click();
await page.getByLabel("API Key").fill(SANDBOX_KEY);
await page.getByLabel("Base URL endpoint").fill(SANDBOX_URL);
await page.getByLabel("Application ID (optional)").fill("");
await page.getByLabel("Entity ID (optional)").fill("");
await shot("add-connection");
await page.getByRole("button", { name: "Apply" }).click();
await page.locator("#secret-value").waitFor();
if (!(await page.locator("#secret-value").textContent())?.trim()) throw new Error("no webhook secret shown");

step("test the connection");
await page.getByRole("button", { name: /^Test / }).first().click();
await page.locator("#test-result p.ok").waitFor();
await shot("connections");

step("add a sender");
await page.getByRole("link", { name: "Sender accounts" }).click();
await page.getByLabel("From address").fill("news@example.com");
await page.getByLabel("From name").fill("News");
await page.getByRole("button", { name: "Create sender" }).click();
await page.getByRole("cell", { name: "news@example.com", exact: true }).waitFor();
await shot("senders");

step("send to bouncing addresses");
await page.getByRole("link", { name: "Sends" }).click();
await page.getByLabel("Subject").fill("Spring news");
await page.getByLabel("Text").fill("Hello");
await page.getByLabel("Recipients (comma separated)").fill("hardbounce.ann@example.com, ok.bob@example.com");
await page.getByRole("button", { name: "Send", exact: true }).click();
await page.getByRole("link", { name: "Spring news" }).waitFor();
for (let i = 0; i < 100; i++) {
  if (await page.getByText("accepted 2").count()) break;
  await page.waitForTimeout(200);
  await page.reload();
}
await shot("sends");
await page.getByRole("link", { name: "Spring news" }).click();
await page.getByRole("link", { name: "hardbounce.ann@example.com" }).waitFor();
await shot("send-recipients");

step("bounce on the profile card");
await page.goto(CONSOLE_URL + "/console/#/profile/" + encodeURIComponent("hardbounce.ann@example.com"));
for (let i = 0; i < 100; i++) {
  if (await page.getByRole("cell", { name: "newsletter.hardbounce" }).count()) break;
  await page.waitForTimeout(200);
  await page.reload();
}
await page.getByRole("cell", { name: "newsletter.hardbounce" }).first().waitFor({ timeout: 1000 });
await shot("profile");
await page.getByLabel("Only events (comma separated, optional)").fill("newsletter.hardbounce");
await page.getByRole("button", { name: "Show" }).click();
await page.waitForURL(/events=/);
// The filtered list says so in its caption: wait for it, not for a cell the
// unfiltered list has too.
await page.getByText("Activity (newest first): newsletter.hardbounce").waitFor();
await page.getByRole("cell", { name: "newsletter.hardbounce" }).first().waitFor();
if (await page.getByRole("cell", { name: "message.send", exact: true }).count()) throw new Error("the event filter let message.send through");

step("suppression listed");
await page.getByRole("link", { name: "Suppressions" }).click();
for (let i = 0; i < 50; i++) {
  if (await page.getByRole("link", { name: "hardbounce.ann@example.com" }).count()) break;
  await page.waitForTimeout(200);
  await page.reload();
}
await page.getByRole("link", { name: "hardbounce.ann@example.com" }).waitFor({ timeout: 1000 });
const [exported] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
if (!Buffer.concat(await (await exported.createReadStream()).toArray()).toString().includes("hardbounce.ann@example.com")) throw new Error("the exported list lacks the bounced address");
await page.getByLabel("Suppression list (CSV with an email column, or JSON)").setInputFiles({
  name: "moved.csv", mimeType: "text/csv", buffer: Buffer.from("email,reason\nmoved.carol@example.com,bounced at the old provider\nnot-an-address,x\n"),
});
await page.getByRole("button", { name: "Import", exact: true }).click();
await page.locator("#import-result").getByText("1 imported").waitFor();
await page.locator("#import-result").getByRole("cell", { name: "3", exact: true }).waitFor();
await shot("suppressions");

step("segmentation");
await page.getByRole("link", { name: "Segmentation" }).click();
await page.getByLabel("Events (comma separated)").fill("newsletter.hardbounce");
await page.getByRole("button", { name: "Find profiles" }).click();
await page.locator("#segment-result").getByRole("link", { name: "hardbounce.ann@example.com" }).waitFor();
const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
const csv = await (await download.createReadStream()).toArray();
if (!Buffer.concat(csv).toString().includes("hardbounce.ann@example.com")) throw new Error("CSV lacks the bounced profile");
await shot("segmentation");

step("attention and sending domains");
await page.getByRole("link", { name: "Attention" }).click();
await page.getByRole("heading", { name: "Attention" }).waitFor();
await page.getByRole("cell", { name: "{groupId: 7, groupName: BRAND_NEW, errorNames: [EC_BRAND_NEW], event: newsletter.hardbounce}" }).waitFor();
await shot("attention");
step("rules and a dry-run reclassification");
await page.getByRole("navigation").getByRole("link", { name: "Rules" }).click();
await page.getByRole("heading", { name: "Rules", exact: true }).waitFor();
await page.getByRole("button", { name: "Reclassify" }).click();
await page.locator("#operation-result").getByText(/: done \(dry run/).waitFor();
await shot("rules");
await page.getByRole("link", { name: "Sending domains" }).click();
await page.getByRole("heading", { name: "Sending domains" }).waitFor();
await shot("domains");

step("phone width");
await page.setViewportSize({ width: 390, height: 844 });
await page.getByRole("link", { name: "Sends" }).click();
await page.getByRole("link", { name: "Spring news" }).waitFor();
await shot("sends-phone");

step("a read token is not offered what its role may not do");
await page.setViewportSize({ width: 1200, height: 900 });
await page.getByRole("button", { name: "Sign out" }).click();
await page.getByLabel("Caller token").fill(READ_TOKEN);
await page.getByRole("button", { name: "Sign in" }).click();
await page.getByRole("link", { name: "Profile card" }).waitFor();
for (const hidden of ["Connections", "Sender accounts", "Sends", "Suppressions"]) {
  if (await page.getByRole("link", { name: hidden, exact: true }).count()) throw new Error(`a read token is offered ${hidden}`);
}
await page.getByRole("navigation").getByRole("link", { name: "Rules" }).click();
await page.getByRole("heading", { name: "Rules", exact: true }).waitFor();
if (await page.getByRole("button", { name: "Reclassify" }).count()) throw new Error("a read token is offered a reclassification");
await page.goto(CONSOLE_URL + "/console/#/suppressions");
await page.getByText("Your role may not see this page").waitFor();
await shot("suppressions-read-role");

await browser.close();
const real = problems.filter((p) => !/Failed to load resource/.test(p));
if (real.length) throw new Error("browser errors: " + real.join("; "));
console.log("console e2e: ok");
