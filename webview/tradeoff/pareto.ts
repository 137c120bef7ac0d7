// The Pareto front of (cost, accuracy) points: the points no other point beats on both — lower
// or equal cost AND higher or equal accuracy, strictly better on one. Sorted by cost, ascending.

export function paretoFront<T>(points: readonly T[], cost: (p: T) => number, accuracy: (p: T) => number): T[] {
  const sorted = points
    .filter((p) => Number.isFinite(cost(p)) && Number.isFinite(accuracy(p)))
    // Cheapest first; among equal cost, the most accurate first so it shadows the others.
    .sort((a, b) => cost(a) - cost(b) || accuracy(b) - accuracy(a));
  const front: T[] = [];
  let best = -Infinity;
  for (const p of sorted) {
    if (accuracy(p) > best) {
      front.push(p);
      best = accuracy(p);
    }
  }
  return front;
}
