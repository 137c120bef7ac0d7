// Which layers a command acts on. Menus call with (clicked node, all selected nodes); the palette
// with nothing (then the tree's selection); tests and webviews with layer names.
import type { LayersNode } from '../tree/layersTree';
import type { Services } from './command';

function isNode(x: unknown): x is LayersNode {
  return typeof x === 'object' && x !== null && 'kind' in x && ['model', 'group', 'layer'].includes((x as LayersNode).kind);
}

function layersOf(node: LayersNode): string[] {
  if (node.kind === 'layer') return [node.layer.name];
  if (node.kind === 'group') return node.children.flatMap(layersOf);
  return [];
}

/** Layer names from command arguments, the tree selection as fallback; unique, in order. */
export function selectedLayers(s: Services, args: unknown[], fallbackToSelection = true): string[] {
  const [first, second] = args;
  let names: string[] = [];
  if (Array.isArray(second) && second.every(isNode) && second.length > 0) names = second.flatMap(layersOf);
  else if (isNode(first)) names = layersOf(first);
  else if (typeof first === 'string') names = [first];
  else if (Array.isArray(first) && first.every((x) => typeof x === 'string')) names = first as string[];
  else if (first && typeof first === 'object' && Array.isArray((first as { layers?: unknown }).layers)) {
    names = (first as { layers: string[] }).layers;
  } else if (fallbackToSelection) names = s.treeView.selection.flatMap(layersOf);
  return [...new Set(names)];
}

/** The options object a test or webview passes (the first non-node object argument). */
export function optionsArg<T extends object>(args: unknown[]): Partial<T> {
  const found = args.find((a) => a && typeof a === 'object' && !Array.isArray(a) && !isNode(a));
  return (found ?? {}) as Partial<T>;
}
