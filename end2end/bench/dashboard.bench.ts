// Numbers for the dashboard (issue #5): bundle size, time from navigation to farm data
// on screen and to a live (hydrated, polled) page, and what the page shows while the
// leader is SIGKILLed. Prints them and writes end2end/results/ui-bench.json.
// Clusters run with `--anonymous-reads` (a wall screen), so that pages arrive with the
// farm in them as before sign-in existed; the page writes with the admin token, put into
// the tab's sessionStorage as if the user had signed in.
import { test } from "@playwright/test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { resolve } from "node:path";
import { Cluster } from "../tests/fixtures/cluster";
import { post, stats } from "./common";

const RESULTS = resolve(__dirname, "../results");
const PKG = resolve(__dirname, "../../target/site/pkg");
const ROUNDS = 5;
const KILLS = 3;

const SERVE_ARGS = ["--anonymous-reads"];

/// 20 printers, 10 spools, 200 jobs: a mid-sized farm.
async function fill(cluster: Cluster): Promise<void> {
  const leader = cluster.url(await cluster.waitForLeader());
  const printers = [];
  for (let i = 0; i < 20; i++) printers.push(await post(cluster, `${leader}/api/v1/printers`, { company: "Prusa", model: `MK4 #${i}` }));
  const spools = [];
  for (let i = 0; i < 10; i++) {
    spools.push(await post(cluster, `${leader}/api/v1/filaments`, { type: "PLA", color: `colour ${i}`, total_weight_in_grams: 100000 }));
  }
  for (let i = 0; i < 200; i++) {
    await post(cluster, `${leader}/api/v1/print_jobs`, {
      printer_id: printers[i % 20].id,
      filament_id: spools[i % 10].id,
      filepath: `part-${i}.gcode`,
      print_weight_in_grams: 10,
    });
  }
}

test("dashboard numbers", async ({ browser }) => {
  const wasm = readFileSync(`${PKG}/frontend_bg.wasm`);
  const js = readFileSync(`${PKG}/frontend.js`);
  const size = {
    wasm_bytes: wasm.length,
    wasm_gzip_bytes: gzipSync(wasm, { level: 9 }).length,
    js_bytes: js.length,
    js_gzip_bytes: gzipSync(js, { level: 9 }).length,
  };

  // Navigation → data on screen, and → live.
  const firstData: number[] = [];
  const live: number[] = [];
  {
    const cluster = await Cluster.start(3, { serveArgs: SERVE_ARGS });
    try {
      await fill(cluster);
      const leader = await cluster.waitForLeader();
      const follower = [1, 2, 3].find((id) => id !== leader)!;
      for (let round = 0; round < ROUNDS; round++) {
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
        await page.waitForFunction(() => document.querySelector('[data-testid="freshness"]')?.textContent?.startsWith("live"));
        live.push(await page.evaluate(() => performance.now()));
        await context.close();
      }
    } finally {
      await cluster.stop();
    }
  }

  // Leader kill with the page open on a follower: sample every 50 ms.
  const kills = [];
  for (let round = 0; round < KILLS; round++) {
    const cluster = await Cluster.start(3, { serveArgs: SERVE_ARGS });
    const context = await browser.newContext();
    await context.addInitScript((token) => sessionStorage.setItem("raft3d.token", token), cluster.adminToken);
    try {
      const leaderUrl = cluster.url(await cluster.waitForLeader());
      await post(cluster, `${leaderUrl}/api/v1/printers`, { company: "Prusa", model: "MK4" });
      const leader = await cluster.waitForLeader();
      const follower = [1, 2, 3].find((id) => id !== leader)!;
      const page = await context.newPage();
      await page.goto(`${cluster.url(follower)}/printers`);
      await page.waitForFunction(() => document.querySelector('[data-testid="freshness"]')?.textContent?.startsWith("live"));
      let stop = false;
      let longestBlank = 0;
      let longestNotLive = 0;
      let blankSince: number | null = null;
      let notLiveSince: number | null = null;
      const sampler = (async () => {
        while (!stop) {
          const now = Date.now();
          const rows = await page.getByTestId("printer-table").locator("tbody tr").count();
          const freshness = (await page.getByTestId("freshness").textContent()) ?? "";
          if (rows === 0) blankSince ??= now;
          else if (blankSince !== null) { longestBlank = Math.max(longestBlank, now - blankSince); blankSince = null; }
          // "live" with a new clock time each second; anything else is stale or trouble.
          if (!freshness.startsWith("live")) notLiveSince ??= now;
          else if (notLiveSince !== null) { longestNotLive = Math.max(longestNotLive, now - notLiveSince); notLiveSince = null; }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      await new Promise((r) => setTimeout(r, 1000));
      const killedAt = Date.now();
      await cluster.kill(leader);
      const form = page.getByRole("form", { name: "Add a printer" });
      await form.getByLabel("Company").fill("Voron");
      await form.getByLabel("Model").fill(`2.4 r${round}`);
      await form.getByRole("button", { name: "Add printer" }).click();
      await page.getByRole("cell", { name: `2.4 r${round}`, exact: true }).waitFor({ timeout: 60_000 });
      const writeMs = Date.now() - killedAt;
      await new Promise((r) => setTimeout(r, 3000));
      stop = true;
      await sampler;
      kills.push({ write_after_kill_ms: writeMs, longest_no_data_ms: longestBlank, longest_not_live_ms: longestNotLive });
    } finally {
      await context.close();
      await cluster.stop();
    }
  }

  const report = {
    when: new Date().toISOString(),
    bundle: size,
    navigation_to_farm_data_ms: stats(firstData),
    navigation_to_live_ms: stats(live),
    leader_kill: kills,
  };
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(`${RESULTS}/ui-bench.json`, JSON.stringify(report, null, 2));
  console.log(JSON.stringify(report, null, 2));
});
