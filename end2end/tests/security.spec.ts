// The dashboard on a secured cluster (as `raft3d init` + `serve --node-dir` make it):
// pages carry no farm without a token, the page holds the token the user types (this
// tab's sessionStorage) and signs every API call with it, and a page of another origin
// cannot make a signed-in browser change the farm.
import { createServer, Server } from "node:http";
import { AddressInfo } from "node:net";
import { test, expect } from "./fixtures/test";
import { Cluster } from "./fixtures/cluster";

const TOKEN_KEY = "raft3d.token";
const REFUSED = "That token was refused (unknown or revoked)";

interface Printer {
  id: string;
  company: string;
  model: string;
}

async function addPrinter(cluster: Cluster, body: object): Promise<void> {
  const leader = await cluster.waitForLeader();
  const response = await cluster.api(leader, "/api/v1/printers", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(201);
}

test("sign in with a token, a refused token, sign out", async ({ cluster, dashboard, page }) => {
  // Arrange: a printer in the farm, and the page of a follower.
  await addPrinter(cluster, { id: "p-secret", company: "Prusa", model: "Secret MK4" });
  const leader = await cluster.waitForLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  const url = cluster.url(follower);

  // The page as the node sends it: a login form, no farm (not even in the embedded JSON).
  const html = await (await fetch(`${url}/printers`)).text();
  expect(html).not.toContain("Secret MK4");
  expect(html).toContain('"login_required":true');
  const context = await page.context().browser()!.newContext({ javaScriptEnabled: false });
  const bare = await context.newPage();
  await bare.goto(`${url}/printers`);
  await expect(bare.getByTestId("login-form")).toBeVisible();
  await expect(bare.getByRole("button", { name: "Sign in" })).toBeDisabled();
  await expect(bare.getByRole("heading", { level: 1, name: "Printers" })).toBeHidden();
  await context.close();

  // A fresh page in the browser: the form, nothing of the farm.
  await page.goto(`${url}/printers`);
  const form = dashboard.loginForm();
  await expect(form.getByRole("button", { name: "Sign in" })).toBeEnabled({ timeout: 30_000 });
  await expect(form.getByTestId("login-token")).toHaveAttribute("type", "password");
  await expect(page.getByTestId("freshness")).toContainText("sign in");
  await expect(page.getByTestId("printer-p-secret")).toHaveCount(0);
  await expect(page.getByTestId("sign-out")).toHaveCount(0);
  // The header still says which node this is (GET /api/v1/cluster is open).
  await expect(dashboard.connection()).toContainText(`Node ${follower}`);
  await dashboard.screenshot("login");

  // A wrong token: refused, forgotten, the form again with the reason.
  await dashboard.signIn("r3d_0000000000000000000000000000000000000000000000000000000000000000");
  await expect(page.getByTestId("login-error")).toHaveText(REFUSED);
  await expect(form).toBeVisible();
  await expect(page.getByTestId("printer-p-secret")).toHaveCount(0);
  expect(await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY)).toBeNull();

  // The admin token: the farm, live; the tab keeps the token.
  await dashboard.signIn(cluster.adminToken);
  await expect(page.getByTestId("printer-p-secret")).toContainText("Secret MK4");
  await dashboard.waitUntilLive();
  await expect(form).toHaveCount(0);
  expect(await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY)).toBe(cluster.adminToken);

  // A reload stays signed in (the token is read back after hydration, no mismatch).
  await page.reload();
  await expect(page.getByTestId("printer-p-secret")).toContainText("Secret MK4", { timeout: 30_000 });
  await dashboard.waitUntilLive();
  await expect(form).toHaveCount(0);

  // Writes carry it too, to the leader on another origin.
  await dashboard.addPrinter("Voron", "Trident");

  // Sign out: the form again, the farm gone from the page and the token from the tab.
  await dashboard.signOut();
  await expect(page.getByTestId("printer-p-secret")).toHaveCount(0);
  await expect(page.getByTestId("login-error")).toBeEmpty();
  expect(await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY)).toBeNull();
  await page.waitForTimeout(1500); // the refresh loop must not bring the farm back
  await expect(page.getByTestId("printer-p-secret")).toHaveCount(0);
  await expect(form).toBeVisible();
});

test("a viewer token reads but may not write; revoking it signs the page out", async ({ cluster, dashboard, page }) => {
  // Arrange: a printer and a viewer token, made with the admin token.
  await addPrinter(cluster, { id: "p-view", company: "Bambu", model: "A1" });
  const leader = await cluster.waitForLeader();
  const made = await cluster.api(leader, "/api/v1/tokens", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "wall screen", role: "viewer" }),
  });
  expect(made.status).toBe(201);
  const viewer = (await made.json()) as { id: string; secret: string };

  // Act: sign in with it (on the leader: a follower may not have applied it yet).
  await page.goto(`${cluster.url(leader)}/printers`);
  await expect(dashboard.loginForm().getByRole("button", { name: "Sign in" })).toBeEnabled({ timeout: 30_000 });
  await dashboard.signIn(viewer.secret);
  await expect(page.getByTestId("printer-p-view")).toContainText("A1");

  // A write: 403, shown under the form like any other refusal; nothing stored.
  const form = page.getByRole("form", { name: "Add a printer" });
  await form.getByLabel("Company").fill("Prusa");
  await form.getByLabel("Model").fill("Not allowed");
  await form.getByRole("button", { name: "Add printer" }).click();
  await expect(page.getByTestId("printer-error")).toContainText("a viewer token may not do this: it needs operator");
  await expect(form.getByLabel("Model")).toHaveValue("Not allowed");
  const printers = await cluster.getJson<Printer[]>(leader, "/api/v1/printers");
  expect(printers.map((p) => p.model)).toEqual(["A1"]);

  // Revoked while the page is open: the next poll gets 401 and the page asks again.
  const revoked = await cluster.api(leader, `/api/v1/tokens/${viewer.id}`, { method: "DELETE" });
  expect(revoked.status).toBe(200);
  await expect(page.getByTestId("login-error")).toHaveText(REFUSED);
  await expect(page.getByTestId("printer-p-view")).toHaveCount(0);
  expect(await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY)).toBeNull();
});

/// The attacker's page: a `no-cors` fetch (a "simple" request, which the browser sends
/// without asking the node), one with credentials and a CORS read, all at `target`;
/// what it could see goes to `window.outcome`. Then the test submits its form, a POST
/// whose text/plain body is JSON.
function evilPage(target: string): string {
  const url = JSON.stringify(`${target}/api/v1/printers`);
  return `<!doctype html>
<html><head><title>Cheap filament</title><link rel="icon" href="data:,"></head><body>
<form id="f" method="POST" action=${url} enctype="text/plain">
  <input type="hidden" name='{"company":"Evil","model":"Form","pad":"' value='"}'>
</form>
<script>
(async () => {
  const body = JSON.stringify({ company: "Evil", model: "X" });
  const outcome = {};
  const sent = await Promise.allSettled([
    fetch(${url}, { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body }),
    fetch(${url}, { method: "POST", mode: "no-cors", credentials: "include", body }),
  ]);
  outcome.noCors = sent.map((s) => s.status === "fulfilled" ? s.value.type : "rejected");
  try {
    await fetch(${url});
    outcome.read = "allowed";
  } catch (e) {
    outcome.read = "blocked";
  }
  window.outcome = outcome;
})();
</script>
</body></html>`;
}

test("another origin's page cannot change the farm through a signed-in browser", async ({ cluster, dashboard, page }) => {
  // Arrange: the user is signed in to the leader's dashboard in this browser.
  const leader = await cluster.waitForLeader();
  const target = cluster.url(leader);
  await dashboard.open(target, "/printers");
  await dashboard.addPrinter("Prusa", "MK4");
  const before = await cluster.getJson<Printer[]>(leader, "/api/v1/printers");

  // The attacker's site: another origin on the same host (same *site*: cookies, which
  // ignore ports, would have been sent along), served by a tiny server of this test.
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(evilPage(target));
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const evilOrigin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    // Act: the user opens it in another tab of the same browser.
    const evil = await page.context().newPage();
    const statuses: number[] = [];
    evil.on("response", (response) => {
      if (response.request().method() === "POST" && response.url().startsWith(target)) statuses.push(response.status());
    });
    await evil.goto(evilOrigin);
    const outcome = await (await evil.waitForFunction(() => (window as unknown as { outcome?: object }).outcome)).jsonValue();
    await evil.evaluate(() => (document.getElementById("f") as HTMLFormElement).submit());
    await evil.waitForURL(`${target}/api/v1/printers`, { timeout: 15_000 });
    await expect.poll(() => statuses.length).toBe(3);
    await evil.close();

    // Assert: the page learnt nothing (no-cors answers are opaque, a CORS read from a
    // foreign origin is blocked), every attempt was refused (the browser saw the real
    // statuses), and the farm is unchanged on every node.
    expect(outcome).toEqual({ noCors: ["opaque", "opaque"], read: "blocked" });
    for (const status of statuses) expect([401, 403, 415]).toContain(status);
    for (const id of [1, 2, 3]) {
      const printers = await cluster.getJson<Printer[]>(id, "/api/v1/printers");
      expect(printers.filter((p) => p.company === "Evil")).toEqual([]);
    }
    const after = await cluster.getJson<Printer[]>(leader, "/api/v1/printers");
    expect(after).toEqual(before);

    // The signed-in page still works: its own writes carry the token.
    await dashboard.addPrinter("Voron", "0.2");
  } finally {
    await new Promise((done) => server.close(done));
  }
});
