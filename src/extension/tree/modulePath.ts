// How the tree nests a layer: module path segments, a numeric index kept with its container
// (`encoder.layers.0.fc1` → encoder / layers.0 / fc1), so `layers.0` reads as one module.
export function moduleSegments(name: string): string[] {
  const parts = name.split('.').filter((p) => p.length > 0);
  const out: string[] = [];
  for (const p of parts) {
    if (/^\d+$/.test(p) && out.length > 0) out[out.length - 1] += `.${p}`;
    else out.push(p);
  }
  return out.length ? out : [name];
}
