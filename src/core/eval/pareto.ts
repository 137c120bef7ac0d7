// The Pareto front of a trade-off: points that no other point beats on both axes (fewer or equal
// parameters AND a higher or equal score, strictly better in one). Sorted by cost, ascending.

export function paretoFront<T>(points: readonly T[], cost: (p: T) => number, value: (p: T) => number): T[] {
  const sorted = points
    .filter((p) => Number.isFinite(cost(p)) && Number.isFinite(value(p)))
    // Cheapest first; at equal cost the best first, so it shadows the others.
    .sort((a, b) => cost(a) - cost(b) || value(b) - value(a));
  const front: T[] = [];
  let best = -Infinity;
  for (const p of sorted) {
    if (value(p) > best) {
      front.push(p);
      best = value(p);
    }
  }
  return front;
}
