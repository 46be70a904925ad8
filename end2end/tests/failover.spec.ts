// The dashboard keeps working through node failures, with real processes killed by
// SIGKILL while the page is open and no reload.
import { test, expect } from "./fixtures/test";
import { DashboardPage } from "./fixtures/dashboard_page";

/// Samples, every 100 ms until stopped, whether the printer cards are on screen.
function watchData(dashboard: DashboardPage) {
  let stop = false;
  let samples = 0;
  let blank = 0;
  const running = (async () => {
    while (!stop) {
      samples++;
      if ((await dashboard.printerCards().getByRole("article").count()) === 0) blank++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async finish() {
      stop = true;
      await running;
      return { samples, blank };
    },
  };
}

test("a write completes after the leader is killed, without a reload", async ({ cluster, dashboard, page }) => {
  // Arrange: the page on a follower, a printer on screen.
  const leader = await cluster.waitForLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  await dashboard.open(cluster.url(follower));
  await dashboard.addPrinter("Creality", "Ender 3");
  const watcher = watchData(dashboard);

  // Act: SIGKILL the leader's process, then add a printer at once.
  const leaderPid = cluster.pid(leader);
  await cluster.kill(leader);
  const form = page.getByRole("form", { name: "Add a printer" });
  await form.getByLabel("Company").fill("Voron");
  await form.getByLabel("Model").fill("2.4");
  await form.getByRole("button", { name: "Add printer" }).click();

  // Assert: the write lands (stored once) on the new leader, shown without reload.
  await expect(dashboard.printerCards().getByRole("heading", { name: "Voron 2.4", exact: true })).toBeVisible({
    timeout: 30_000,
  });
  const newLeader = await cluster.waitForLeader();
  expect(newLeader).not.toBe(leader);
  const printers = await cluster.getJson<{ model: string }[]>(newLeader, "/api/v1/printers");
  expect(printers.filter((p) => p.model === "2.4")).toHaveLength(1);
  const leadership = newLeader === follower ? "this node leads" : `leader: node ${newLeader}`;
  await expect(dashboard.connection()).toContainText(leadership);
  await expect(page.getByTestId("printer-error")).toBeEmpty();

  // The printer list never left the screen while the cluster re-elected.
  const { samples, blank } = await watcher.finish();
  expect(samples).toBeGreaterThan(5);
  expect(blank).toBe(0);
  expect(leaderPid).toBeDefined();
  await dashboard.go("Cluster");
  await expect(page.getByTestId(`node-${leader}`).getByTestId("answers")).toContainText("no");
  await dashboard.screenshot("cluster-after-leader-kill");
});

test("killing the page's own node moves the page to another node, with a banner", async ({ cluster, dashboard, page }) => {
  // Arrange: the page on a follower (the leader keeps leading).
  const leader = await cluster.waitForLeader();
  const own = [1, 2, 3].find((id) => id !== leader)!;
  await dashboard.open(cluster.url(own));
  await dashboard.addPrinter("Prusa", "XL");

  // Act: SIGKILL the node that served the page.
  await cluster.kill(own);

  // Assert: a banner names the dead node and the new one; the page keeps working.
  const banner = page.getByTestId("failover-banner");
  await expect(banner).toContainText(`Node ${own}`, { timeout: 15_000 });
  await expect(banner).toContainText("stopped answering");
  await expect(dashboard.connection()).not.toContainText(`Node ${own} ·`);
  await dashboard.screenshot("failover-banner");
  await dashboard.addPrinter("Bambu", "P1S");
  await dashboard.go("Cluster");
  await expect(page.getByTestId("talking-to")).not.toContainText(`node ${own} `);
  await expect(page.getByTestId(`node-${own}`).getByTestId("answers")).toContainText("no");
  await page.getByRole("button", { name: "Dismiss" }).click();
  await expect(banner).toHaveCount(0);
});
