// Numbers for a farm with a year of history (issue #23): with 100k jobs on a 3-node
// cluster, the time from navigation to the job board's data on screen and to a live
// page (hydrated, following the change stream), on a follower; and what ten idle
// dashboards cost the leader in CPU (its utime + stime from /proc, over 30 s, against
// 30 s with no page open). Prints them and writes end2end/results/history-bench.json.
// `scripts/e2e.sh --config playwright.bench.config.ts bench/history.bench.ts`.
// Pages are wall screens: the cluster runs with `--anonymous-reads`.
import { expect, test } from "@playwright/test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { Cluster } from "../tests/fixtures/cluster";
import { post, stats } from "./common";

const RESULTS = resolve(__dirname, "../results");
const JOBS = Number(process.env.HISTORY_JOBS ?? 100_000);
const ROUNDS = 5;
const IDLE_PAGES = 10;
const IDLE_SECONDS = 30;
const CONCURRENCY = 32;

/// 20 printers, 10 spools and JOBS queued jobs, written by CONCURRENCY clients.
async function fill(cluster: Cluster): Promise<{ fillMs: number; printers: { id: string }[] }> {
  const leader = cluster.url(await cluster.waitForLeader());
  const started = Date.now();
  const printers = [];
  for (let i = 0; i < 20; i++) printers.push(await post(cluster, `${leader}/api/v1/printers`, { company: "Prusa", model: `MK4 #${i}` }));
  const spools = [];
  for (let i = 0; i < 10; i++) {
    spools.push(await post(cluster, `${leader}/api/v1/filaments`, { type: "PLA", color: `colour ${i}`, total_weight_in_grams: 1_000_000_000 }));
  }
  let next = 0;
  const worker = async () => {
    while (next < JOBS) {
      const i = next++;
      await post(cluster, `${leader}/api/v1/print_jobs`, {
        printer_id: printers[i % 20].id,
        filament_id: spools[i % 10].id,
        filepath: `part-${i}.gcode`,
        print_weight_in_grams: 1,
      });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { fillMs: Date.now() - started, printers };
}

/// CPU seconds (user + system) a process has used so far.
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  return ticks / 100; // USER_HZ is 100 on Linux
}

async function leaderCpuPercent(pid: number, seconds: number): Promise<number> {
  const before = cpuSeconds(pid);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return ((cpuSeconds(pid) - before) / seconds) * 100;
}

test("a farm with a year of history: dashboard times and idle cost", async ({ browser }) => {
  const cluster = await Cluster.start(3, { serveArgs: ["--anonymous-reads"] });
  try {
    const { fillMs, printers } = await fill(cluster);
    const leader = await cluster.waitForLeader();
    const follower = [1, 2, 3].find((id) => id !== leader)!;

    const firstData: number[] = [];
    const live: number[] = [];
    const pageBytes: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      pageBytes.push((await (await fetch(`${cluster.url(follower)}/jobs`)).text()).length);
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${cluster.url(follower)}/jobs`);
      await page.getByTestId("column-queued").getByRole("listitem").first().waitFor();
      firstData.push(
        await page.evaluate(() => {
          const paint = performance.getEntriesByName("first-contentful-paint")[0];
          return paint ? paint.startTime : performance.now();
        }),
      );
      await page.waitForFunction(() => document.querySelector('[data-testid="freshness"]')?.textContent?.startsWith("live"), null, { timeout: 60_000 });
      live.push(await page.evaluate(() => performance.now()));
      await context.close();
    }

    // On one live page: "Show more", a printer filter (applied by the node), and a change
    // made through the API arriving on screen through the change stream.
    const interaction = await (async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${cluster.url(follower)}/jobs`);
      await page.waitForFunction(() => document.querySelector('[data-testid="freshness"]')?.textContent?.startsWith("live"), null, { timeout: 60_000 });
      const queued = page.getByTestId("column-queued");
      let t = Date.now();
      await page.getByTestId("more-queued").click();
      await expect(queued.getByRole("listitem")).toHaveCount(100, { timeout: 30_000 });
      const moreMs = Date.now() - t;
      t = Date.now();
      await page.getByTestId("filter-printer").selectOption(printers[1].id);
      await expect(queued.locator(".count")).toHaveText(String(JOBS / 20), { timeout: 30_000 });
      const filterMs = Date.now() - t;
      await page.getByTestId("filter-printer").selectOption("");
      await expect(queued.locator(".count")).toHaveText(String(JOBS), { timeout: 30_000 });
      const first = await (await fetch(`${cluster.url(leader)}/api/v1/print_jobs?limit=1`)).json();
      t = Date.now();
      const moved = await fetch(`${cluster.url(leader)}/api/v1/print_jobs/${first[0].id}/status?status=running`, {
        method: "POST",
        headers: { authorization: `Bearer ${cluster.adminToken}` },
      });
      if (moved.status !== 200) throw new Error(`status change: HTTP ${moved.status}`);
      await expect(page.getByTestId("column-running")).toContainText(first[0].filepath, { timeout: 30_000 });
      const changeMs = Date.now() - t;
      await context.close();
      return { show_more_ms: moreMs, printer_filter_ms: filterMs, api_change_on_screen_ms: changeMs };
    })();

    // Idle: nothing open, then ten live dashboards on the leader's own URL.
    const pid = cluster.pid(leader)!;
    const idleNoPages = await leaderCpuPercent(pid, IDLE_SECONDS);
    const contexts = [];
    for (let i = 0; i < IDLE_PAGES; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${cluster.url(leader)}/jobs`);
      await page.waitForFunction(() => document.querySelector('[data-testid="freshness"]')?.textContent?.startsWith("live"), null, { timeout: 60_000 });
      contexts.push(context);
    }
    const idleTenPages = await leaderCpuPercent(pid, IDLE_SECONDS);
    for (const context of contexts) await context.close();

    const report = {
      when: new Date().toISOString(),
      jobs: JOBS,
      fill_ms: fillMs,
      jobs_page_bytes: stats(pageBytes),
      navigation_to_board_data_ms: stats(firstData),
      navigation_to_live_ms: stats(live),
      on_a_live_page: interaction,
      leader_cpu_percent_of_a_core: {
        no_pages: Number(idleNoPages.toFixed(2)),
        ten_idle_pages: Number(idleTenPages.toFixed(2)),
        ten_pages_cost: Number((idleTenPages - idleNoPages).toFixed(2)),
        over_seconds: IDLE_SECONDS,
      },
    };
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(`${RESULTS}/history-bench.json`, JSON.stringify(report, null, 2));
    console.log(JSON.stringify(report, null, 2));
  } finally {
    await cluster.stop();
  }
});
