// What the dashboard benchmarks share: an authorised POST and min/median/max.
import { Cluster } from "../tests/fixtures/cluster";

export async function post(cluster: Cluster, url: string, body: object): Promise<{ id: string }> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${cluster.adminToken}` },
    body: JSON.stringify(body),
  });
  if (response.status !== 201) throw new Error(`${url}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as { id: string };
}

export function stats(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0], median: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1] };
}
