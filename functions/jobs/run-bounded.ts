/**
 * Runs `work` over `items` with at most `concurrency` in flight, results in input order. A
 * failing item rejects the whole call only if `work` throws; jobs catch per item themselves.
 */
export async function runBounded<T, R>(
	items: readonly T[],
	concurrency: number,
	work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
	const results = new Array<R>(items.length);
	let next = 0;
	const lane = async () => {
		while (next < items.length) {
			const index = next++;
			results[index] = await work(items[index] as T, index);
		}
	};
	const lanes = Math.max(1, Math.min(Math.floor(concurrency), items.length));
	await Promise.all(Array.from({ length: lanes }, lane));
	return results;
}
