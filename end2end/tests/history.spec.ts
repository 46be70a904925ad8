// A farm with history: the job board holds the first 50 jobs of a column and counts the
// rest, "Show more" brings more, the printer filter is applied by the node, a printer's
// history pages through its jobs, changes made
// elsewhere appear without a reload (the change stream), also after the page's own node
// was killed (the stream resumes on another member).
import { test, expect } from "./fixtures/test";

const JOBS = 120;

test("a long queue: bounded columns, more on demand, filters on the node, live through a kill", async ({ cluster, dashboard, page }) => {
  // Arrange: 2 printers, a spool, 120 queued jobs (every third on the second printer).
  const leader = await cluster.waitForLeader();
  const post = async (path: string, body: object) => {
    const response = await cluster.api(leader, path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(response.status, `${path} ${JSON.stringify(body)}`).toBe(201);
  };
  await post("/api/v1/printers", { id: "p1", company: "Prusa", model: "MK4" });
  await post("/api/v1/printers", { id: "p2", company: "Bambu", model: "X1C" });
  await post("/api/v1/filaments", { id: "f1", type: "PLA", color: "red", total_weight_in_grams: 100000 });
  for (let n = 0; n < JOBS; n += 20) {
    await Promise.all(
      Array.from({ length: 20 }, (_, k) => n + k).map((k) =>
        post("/api/v1/print_jobs", {
          id: `j${String(k).padStart(3, "0")}`,
          printer_id: k % 3 === 0 ? "p2" : "p1",
          filament_id: "f1",
          filepath: `job-${String(k).padStart(3, "0")}.gcode`,
          print_weight_in_grams: 1,
        }),
      ),
    );
  }

  // The queue's order: the order the jobs were applied in (20 at a time were sent at
  // once, so not necessarily their ids' order).
  const queue = await cluster.getJson<{ filepath: string; printer_id: string }[]>(leader, "/api/v1/queue");
  expect(queue).toHaveLength(JOBS);

  // The page on a follower: 50 cards, the count says 120, 70 more on demand.
  const own = [1, 2, 3].find((id) => id !== leader)!;
  await dashboard.open(cluster.url(own), "/jobs");
  const queued = dashboard.column("queued");
  await expect(queued.getByRole("listitem")).toHaveCount(50);
  await expect(queued.locator(".count")).toHaveText(String(JOBS));
  await expect(queued).toContainText("and 70 more");
  await expect(queued.getByRole("listitem").first()).toContainText(queue[0].filepath);
  await page.getByTestId("more-queued").click();
  await expect(queued.getByRole("listitem")).toHaveCount(100);

  // The printer filter is the node's: all 40 jobs of p2, though not all were on screen.
  await page.getByTestId("filter-printer").selectOption("p2");
  await expect(queued.locator(".count")).toHaveText("40");
  await expect(queued.getByRole("listitem")).toHaveCount(40);
  const ofP2 = queue.filter((job) => job.printer_id === "p2");
  await expect(queued.getByRole("listitem").last()).toContainText(ofP2[ofP2.length - 1].filepath);
  await page.getByTestId("filter-printer").selectOption("");
  await expect(queued.locator(".count")).toHaveText(String(JOBS));

  // A job started through the API moves on screen without a reload.
  const moved = await cluster.api(leader, "/api/v1/print_jobs/j001/status?status=running", { method: "POST" });
  expect(moved.status).toBe(200);
  await expect(dashboard.jobCard("running", "job-001.gcode")).toBeVisible();
  await expect(dashboard.jobCard("running", "job-001.gcode").getByTestId("job-time")).toContainText("running");

  // A printer's history, newest first, 20 at a time, with times and grams.
  await dashboard.go("Printers");
  const history = page.getByTestId("history-p2");
  await history.getByRole("button", { name: "History" }).click();
  await expect(history.getByTestId("history-job")).toHaveCount(20);
  await expect(history.getByTestId("history-job").first()).toContainText("job-117.gcode");
  await expect(history.getByTestId("history-job").first()).toContainText("queued at");
  await history.getByRole("button", { name: "Older jobs" }).click();
  await expect(history.getByTestId("history-job")).toHaveCount(40);
  await expect(history.getByRole("button", { name: "Older jobs" })).toHaveCount(0);
  await dashboard.go("Job board");

  // Kill the page's node: the page moves on, and the stream goes on there.
  await cluster.kill(own);
  await expect(page.getByTestId("failover-banner")).toContainText(`Node ${own}`, { timeout: 15_000 });
  const survivor = await cluster.waitForLeader();
  const done = await cluster.api(survivor, "/api/v1/print_jobs/j001/status?status=done", { method: "POST" });
  expect(done.status).toBe(200);
  await expect(dashboard.jobCard("done", "job-001.gcode")).toBeVisible({ timeout: 15_000 });
  await expect(dashboard.jobCard("done", "job-001.gcode").getByTestId("job-time")).toContainText("ran");
  await dashboard.screenshot("job-board-history");
});

// The gap between reading the board and opening the stream: a change committed then is
// in neither unless the stream starts at the board's index. The page's first stream
// request is held until a printer has been added through the API, as a change that
// lands while the page connects would be (a driver's first status report did, in CI).
test("a change committed while the page opens its change stream is shown", async ({ cluster, dashboard, page }) => {
  const leader = await cluster.waitForLeader();
  let held = false;
  await page.route("**/api/v1/events*", async (route) => {
    if (!held) {
      held = true;
      const created = await cluster.api(leader, "/api/v1/printers", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id: "p-late", company: "Prusa", model: "MK4" }),
      });
      expect(created.status).toBe(201);
    }
    await route.continue();
  });
  await dashboard.open(cluster.url(leader), "/printers");
  await expect.poll(() => held).toBe(true);
  // Nothing else changes the farm: only the stream can bring the printer on screen.
  await expect(page.getByTestId("printer-p-late")).toBeVisible({ timeout: 10_000 });
});
