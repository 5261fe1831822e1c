// End-to-end test of the generated TypeScript client (../../gen/ts) against a
// real ibmaild over gRPC (HTTP/2, plaintext), with webhook posts over REST in
// between: a delivery report, a tracking report (a complaint) becoming an
// event and a suppression, and the sandbox sender's sending domain.
//
// By default it builds ./cmd/ibmaild with the Go toolchain and starts it on
// free loopback ports with a temporary data dir and --sandbox. To use a
// server that is already running instead, set IBMAIL_GRPC_URL (e.g.
// http://127.0.0.1:9090), IBMAIL_HTTP_URL (e.g. http://127.0.0.1:8080) and
// IBMAIL_WEBHOOK_SECRET; the sending-domain test needs it to run with
// --sandbox and is skipped otherwise.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { toJsonString } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { ClassifierService } from "../../../gen/ts/ibmail/v1/classifier_service_pb.js";
import { DeliveryReportService } from "../../../gen/ts/ibmail/v1/delivery_report_service_pb.js";
import { ListProfileEventsResponseSchema, ProfileService } from "../../../gen/ts/ibmail/v1/profile_service_pb.js";
import { ReportOutcome } from "../../../gen/ts/ibmail/v1/report_pb.js";
import {
  ListSendingDomainsResponseSchema,
  SendingDomainService,
  SendingDomainState,
} from "../../../gen/ts/ibmail/v1/sending_domain_service_pb.js";
import { SuppressionService, type Suppression } from "../../../gen/ts/ibmail/v1/suppression_service_pb.js";

// This file runs from clients/node/dist/clients/node/test/ once compiled.
const here = fileURLToPath(new URL(".", import.meta.url));
const repoRoot = resolve(here, "../../../../../..");

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => ok(port));
    });
  });
}

async function waitHealthy(httpUrl: string, daemon: ChildProcess | undefined, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (daemon && daemon.exitCode !== null) {
      throw new Error(`ibmaild exited with ${daemon.exitCode}:\n${log()}`);
    }
    try {
      const res = await fetch(`${httpUrl}/healthz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`ibmaild not healthy at ${httpUrl}/healthz:\n${log()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("ibmail TypeScript client over gRPC", { timeout: 600_000 }, () => {
  let grpcUrl: string;
  let httpUrl: string;
  let secret: string;
  let daemon: ChildProcess | undefined;
  let workDir: string | undefined;
  let classifier: Client<typeof ClassifierService>;
  let profiles: Client<typeof ProfileService>;
  let reports: Client<typeof DeliveryReportService>;
  let suppressions: Client<typeof SuppressionService>;
  let domains: Client<typeof SendingDomainService>;
  // Whether the server runs the sandbox, whose sender account news@example.com
  // makes example.com a sending domain.
  let sandbox = false;

  before(async () => {
    if (process.env.IBMAIL_GRPC_URL && process.env.IBMAIL_HTTP_URL) {
      grpcUrl = process.env.IBMAIL_GRPC_URL;
      httpUrl = process.env.IBMAIL_HTTP_URL;
      secret = process.env.IBMAIL_WEBHOOK_SECRET ?? "";
      assert.ok(secret, "IBMAIL_WEBHOOK_SECRET must be set with IBMAIL_GRPC_URL");
      await waitHealthy(httpUrl, undefined, () => "");
    } else {
      workDir = await mkdtemp(join(tmpdir(), "ibmail-node-test-"));
      const bin = join(workDir, "ibmaild");
      // Build, then run the binary: killing `go run` would not stop its child.
      await promisify(execFile)("go", ["build", "-o", bin, "./cmd/ibmaild"], {
        cwd: repoRoot,
        maxBuffer: 16 << 20,
      });
      const grpcPort = await freePort();
      const httpPort = await freePort();
      grpcUrl = `http://127.0.0.1:${grpcPort}`;
      httpUrl = `http://127.0.0.1:${httpPort}`;
      secret = "node-test-webhook-secret";
      let output = "";
      daemon = spawn(
        bin,
        [
          "--data-dir", join(workDir, "data"),
          "--grpc-addr", `127.0.0.1:${grpcPort}`,
          "--http-addr", `127.0.0.1:${httpPort}`,
          "--webhook-secret", secret,
          "--sandbox",
          "--log-level", "warn",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      daemon.stdout?.on("data", (b: Buffer) => (output += b.toString()));
      daemon.stderr?.on("data", (b: Buffer) => (output += b.toString()));
      await waitHealthy(httpUrl, daemon, () => output);
      sandbox = true;
    }
    // gRPC transports of connect-node 2.x always speak HTTP/2 (the 1.x
    // httpVersion option is gone).
    const transport = createGrpcTransport({ baseUrl: grpcUrl });
    classifier = createClient(ClassifierService, transport);
    profiles = createClient(ProfileService, transport);
    reports = createClient(DeliveryReportService, transport);
    suppressions = createClient(SuppressionService, transport);
    domains = createClient(SendingDomainService, transport);
  });

  // postWebhook posts an Infobip body to one of the server's webhooks over
  // REST, authenticated as Infobip does (HTTP Basic, the secret as password).
  async function postWebhook(path: string, body: unknown): Promise<{ status: number; text: string }> {
    const res = await fetch(`${httpUrl}${path}`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: `Basic ${Buffer.from(`infobip:${secret}`).toString("base64")}`,
      },
      body: JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  }

  // findSuppression pages through the suppression list for one address.
  async function findSuppression(email: string): Promise<Suppression | undefined> {
    let pageToken = "";
    for (;;) {
      const page = await suppressions.listSuppressions({ pageSize: 1000, pageToken });
      const hit = page.suppressions.find((s) => s.email === email);
      if (hit || !page.nextPageToken) return hit;
      pageToken = page.nextPageToken;
    }
  }

  after(async () => {
    if (daemon && daemon.exitCode === null) {
      const exited = new Promise((r) => daemon!.once("exit", r));
      daemon.kill("SIGTERM");
      const timer = setTimeout(() => daemon!.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(timer);
    }
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("ClassifyReport names a hard bounce newsletter.hardbounce", async () => {
    const res = await classifier.classifyReport({
      report: {
        messageId: "node-classify-1",
        to: "ann@example.com",
        doneAt: "2024-05-01T10:00:00.256+0000",
        status: { id: 4, groupId: 2, groupName: "UNDELIVERABLE", name: "UNDELIVERABLE_REJECTED_OPERATOR" },
        error: { id: 6012, name: "EC_HARD_BOUNCE", groupId: 2, groupName: "BOUNCED", permanent: true },
      },
    });
    assert.equal(res.eventName, "newsletter.hardbounce");
    assert.equal(res.classified, true);
    assert.equal(res.outcome, ReportOutcome.EVENT);
  });

  it("a report posted to the webhook over REST is listed by ListProfileEvents", async () => {
    const suffix = `${process.pid}-${Date.now()}`;
    const profileId = `node-profile-${suffix}`;
    const messageId = `node-msg-${suffix}`;
    const body = {
      results: [
        {
          messageId,
          to: "node-client@example.com",
          doneAt: "2024-05-02T08:30:00.000+0000",
          callbackData: JSON.stringify({ profileId }),
          status: { id: 4, groupId: 2, groupName: "UNDELIVERABLE", name: "UNDELIVERABLE_REJECTED_OPERATOR" },
          error: { id: 6012, name: "EC_HARD_BOUNCE", groupId: 2, groupName: "BOUNCED", permanent: true },
        },
      ],
    };
    const res = await fetch(`${httpUrl}/v1/webhooks/infobip/delivery-reports`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: `Basic ${Buffer.from(`infobip:${secret}`).toString("base64")}`,
      },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const ingest = JSON.parse(text) as { accepted?: number; events?: number };
    assert.equal(ingest.accepted, 1, text);
    assert.equal(ingest.events, 1, text);

    const list = await profiles.listProfileEvents({ profileId });
    assert.equal(list.events.length, 1, toJsonString(ListProfileEventsResponseSchema, list));
    const [ev] = list.events;
    assert.equal(ev.action, "newsletter.hardbounce");
    assert.equal(ev.profileId, profileId);
    assert.equal(ev.email, "node-client@example.com");
    assert.equal(ev.params["messageId"], messageId);
    assert.ok(ev.time, "event has a time");
  });

  it("a complaint posted to the tracking webhook becomes newsletter.spambounce and a suppression", async () => {
    const suffix = `${process.pid}-${Date.now()}`;
    const profileId = `node-tracking-${suffix}`;
    const email = `node-complaint-${suffix}@example.com`;
    const eventId = `node-event-${suffix}`;
    // Infobip's shape: one JSON object per event, as in its "Complained
    // reports" example.
    const complaint = {
      notificationType: "COMPLAINED",
      eventId,
      domain: "example.com",
      recipient: email,
      sender: "news@example.com",
      sendDateTime: Date.now() - 60_000,
      messageId: `node-msg-${suffix}`,
      callbackData: JSON.stringify({ profileId }),
    };
    const first = await postWebhook("/v1/webhooks/infobip/tracking-reports", complaint);
    assert.equal(first.status, 200, first.text);
    const ingest = JSON.parse(first.text) as { accepted?: number; events?: number };
    assert.equal(ingest.accepted, 1, first.text);
    assert.equal(ingest.events, 1, first.text);

    // Infobip retries; the same eventId changes nothing.
    const again = await postWebhook("/v1/webhooks/infobip/tracking-reports", complaint);
    assert.equal(again.status, 200, again.text);
    assert.equal((JSON.parse(again.text) as { duplicates?: number }).duplicates, 1, again.text);

    const list = await profiles.listProfileEvents({ profileId });
    assert.equal(list.events.length, 1, toJsonString(ListProfileEventsResponseSchema, list));
    const [ev] = list.events;
    assert.equal(ev.action, "newsletter.spambounce");
    assert.equal(ev.email, email);
    assert.equal(ev.params["notificationType"], "COMPLAINED");
    assert.equal(ev.params["eventId"], eventId);

    const sup = await findSuppression(email);
    assert.ok(sup, `${email} is not on the suppression list`);
    assert.equal(sup.profileId, profileId);
    assert.equal(sup.eventName, "newsletter.spambounce");
    assert.equal(sup.reason, "complaint");

    // The stored report, as ListTrackingReports shows it.
    const stored = await reports.listTrackingReports({ outcome: ReportOutcome.EVENT, pageSize: 1000 });
    const mine = stored.reports.find((r) => r.report?.eventId === eventId);
    assert.ok(mine, `tracking report ${eventId} is not listed`);
    assert.equal(mine.profileId, profileId);
    assert.equal(mine.classification?.eventName, "newsletter.spambounce");
  });

  it("IngestTrackingReports over gRPC takes a late bounce with the webhook secret in metadata", async () => {
    const suffix = `${process.pid}-${Date.now()}`;
    const profileId = `node-late-${suffix}`;
    const email = `node-late-${suffix}@example.com`;
    const res = await reports.ingestTrackingReports(
      {
        reports: [
          {
            notificationType: "LATE_BOUNCE",
            eventId: `node-late-event-${suffix}`,
            recipient: email,
            callbackData: JSON.stringify({ profileId }),
          },
        ],
      },
      { headers: { "x-ibmail-webhook-token": secret } },
    );
    assert.equal(res.accepted, 1);
    assert.equal(res.events, 1);
    const list = await profiles.listProfileEvents({ profileId });
    assert.equal(list.events.length, 1, toJsonString(ListProfileEventsResponseSchema, list));
    assert.equal(list.events[0].action, "newsletter.hardbounce");
    assert.equal(list.events[0].params["notificationType"], "LATE_BOUNCE");
    assert.equal((await findSuppression(email))?.reason, "late bounce");
  });

  it("ListSendingDomains lists the sandbox sender's example.com", async (t) => {
    const list = await domains.listSendingDomains({});
    const d = list.sendingDomains.find((s) => s.domain === "example.com");
    if (!sandbox && !d) {
      t.skip("the server at IBMAIL_GRPC_URL does not run --sandbox");
      return;
    }
    assert.ok(d, toJsonString(ListSendingDomainsResponseSchema, list));
    assert.ok(d.senderIds.includes("sandbox"), `senders of example.com: ${d.senderIds}`);
    if (sandbox) {
      // A fresh server: nothing warned or blocked the domain.
      assert.equal(d.state, SendingDomainState.ACTIVE);
    }
    assert.ok(d.dailyBounceRate >= 0 && d.dailyBounceRate <= 100, `daily bounce rate ${d.dailyBounceRate}`);
    const one = await domains.getSendingDomain({ domain: "example.com" });
    assert.equal(one.sendingDomain?.domain, "example.com");
    assert.equal(one.sendingDomain?.state, d.state);
  });
});
