// The Layers tree: the open model (with its parameter totals), the module-path hierarchy, and one
// item per weight matrix with `768×3072 · 2.36M · r95 412`, a spectrum sparkline icon and a
// Markdown tooltip. contextValue = `layer` + `+factorizable` + `+compressed` drives the menus.
import { basename, join } from 'node:path';
import * as vscode from 'vscode';
import type { LayerSpectrum } from '../../core/linalg';
import { chooseRank, layerFactorShape } from '../../core/compress/policy';
import type { MacsResult } from '../../core/eval/macs';
import { originalParams } from '../../core/model/params';
import type { Layer, Model } from '../../core/model/types';
import { formatCount, formatPercent, formatSaved, formatShape } from '../../core/format';
import type { ModelSession } from '../session';
import { settings, type SortOrder } from '../settings';
import { moduleSegments } from './modulePath';
import { spectrumImages } from './sparkline';

export type LayersNode = ModelNode | GroupNode | LayerNode;

export interface ModelNode { kind: 'model'; path: string }
export interface GroupNode { kind: 'group'; path: string; label: string; parent: GroupNode | ModelNode; children: LayersNode[] }
export interface LayerNode { kind: 'layer'; layer: Layer; label: string; parent: GroupNode | ModelNode }

export function groupSpectra(spectrum: LayerSpectrum): Float64Array[] {
  return spectrum.groups && spectrum.groups.length > 0 ? spectrum.groups : [spectrum.singularValues];
}

/** Parameters saved by factorizing at `energy` (≤ 0: none); undefined before the spectrum is in. */
export function savingAtEnergy(layer: Layer, spectrum: LayerSpectrum | undefined, energy: number): number | undefined {
  if (!spectrum || !layer.factorizable) return undefined;
  const choice = chooseRank({ energy }, layerFactorShape(layer), groupSpectra(spectrum));
  return choice.paramsBefore - choice.paramsAfter;
}

export class LayersTreeProvider implements vscode.TreeDataProvider<LayersNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<LayersNode | LayersNode[] | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private root?: ModelNode;
  private roots: LayersNode[] = [];
  private readonly layerNodes = new Map<string, LayerNode>();
  private readonly disposables: vscode.Disposable[] = [];
  private sortBy: SortOrder = settings().sortBy;
  /** Resolves once VS Code asked for the model node's children after the last rebuild. */
  private rendered: { promise: Promise<void>; resolve: () => void } = deferred();
  private rebuiltAt = 0;
  /** Groups the user opened or folded, by module path. A refreshed item comes back with the state
   *  getTreeItem gives, so without this a refresh (spectra, MACs) could fold a group just opened. */
  private readonly expanded = new Map<string, boolean>();
  private expandedFor?: string;

  constructor(private readonly session: ModelSession, private readonly imageDir: string) {
    this.disposables.push(
      session.onDidChangeModel(() => this.rebuild()),
      // MACs only change tooltips (the model's and the layers'): those rows are refreshed.
      session.onDidMeasureMacs(() => this.changed.fire(this.root ? [this.root, ...this.layerNodes.values()] : undefined)),
      session.onDidUpdateSpectra((spectra) => {
        if (this.sortBy === 'compressibility') return this.rebuild();
        const nodes = spectra.map((s) => this.layerNodes.get(s.layer)).filter((n): n is LayerNode => !!n);
        if (nodes.length) this.changed.fire(nodes);
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('rankscope.layers.sortBy') || e.affectsConfiguration('rankscope.compress.defaultEnergy')) {
          this.sortBy = settings().sortBy;
          this.rebuild();
        }
      }),
    );
    this.rebuild();
  }

  get sortOrder(): SortOrder {
    return this.sortBy;
  }

  /** Follows the view's expand and fold events, so getTreeItem reports what the user sees. */
  followExpansion(view: vscode.TreeView<LayersNode>): vscode.Disposable {
    const record = (node: LayersNode, open: boolean): void => {
      if (node.kind === 'group') this.expanded.set(node.path, open);
    };
    return vscode.Disposable.from(
      view.onDidExpandElement((e) => record(e.element, true)),
      view.onDidCollapseElement((e) => record(e.element, false)),
    );
  }

  nodeFor(layer: string): LayerNode | undefined {
    return this.layerNodes.get(layer);
  }

  /** Waits (at most `timeoutMs`) until the view has loaded the current model's nodes: revealing a
   * node the view has not fetched yet fails. */
  async whenRendered(timeoutMs = 2000): Promise<void> {
    await Promise.race([this.rendered.promise, new Promise<void>((r) => setTimeout(r, timeoutMs))]);
    // The view applies the fetched nodes asynchronously after asking; give a fresh tree a moment.
    const age = performance.now() - this.rebuiltAt;
    if (age < 500) await new Promise((r) => setTimeout(r, 500 - age));
  }

  getChildren(node?: LayersNode): LayersNode[] {
    if (!node) return this.root ? [this.root] : [];
    if (node.kind === 'model') {
      this.rendered.resolve();
      return this.roots;
    }
    if (node.kind === 'group') return node.children;
    return [];
  }

  getParent(node: LayersNode): LayersNode | undefined {
    return node.kind === 'model' ? undefined : node.parent;
  }

  getTreeItem(node: LayersNode): vscode.TreeItem {
    switch (node.kind) {
      case 'model': return this.modelItem(node);
      case 'group': return this.groupItem(node);
      case 'layer': return this.layerItem(node);
    }
  }

  dispose(): void {
    this.changed.dispose();
    for (const d of this.disposables) d.dispose();
  }

  private rebuild(): void {
    this.layerNodes.clear();
    this.rendered = deferred();
    this.rebuiltAt = performance.now();
    const model = this.session.model;
    const path = this.session.path;
    // Another file's groups start as getTreeItem sets them; a re-sort or a rewritten model keeps them.
    if (path !== this.expandedFor) this.expanded.clear();
    this.expandedFor = path;
    if (!model || !path) {
      this.root = undefined;
      this.roots = [];
    } else {
      this.root = { kind: 'model', path };
      this.roots = this.sortBy === 'module' ? this.hierarchy(model, this.root) : this.flat(model, this.root);
    }
    this.changed.fire(undefined);
  }

  /** Groups by module path; a numeric segment stays with its container (`layers.0`). */
  private hierarchy(model: Model, root: ModelNode): LayersNode[] {
    const top: LayersNode[] = [];
    const groups = new Map<string, GroupNode>();
    for (const layer of model.layers) {
      const segments = moduleSegments(layer.name);
      let parent: GroupNode | ModelNode = root;
      let siblings = top;
      let prefix = '';
      for (const seg of segments.slice(0, -1)) {
        prefix = prefix ? `${prefix}.${seg}` : seg;
        let g = groups.get(prefix);
        if (!g) {
          g = { kind: 'group', path: prefix, label: seg, parent, children: [] };
          groups.set(prefix, g);
          siblings.push(g);
        }
        parent = g;
        siblings = g.children;
      }
      const node: LayerNode = { kind: 'layer', layer, label: segments.at(-1) ?? layer.name, parent };
      this.layerNodes.set(layer.name, node);
      siblings.push(node);
    }
    return top;
  }

  private flat(model: Model, root: ModelNode): LayersNode[] {
    const energy = settings().defaultEnergy;
    const key = (l: Layer): number => this.sortBy === 'params'
      ? l.params
      : savingAtEnergy(l, this.session.spectrum(l.name), energy) ?? -Infinity;
    const layers = [...model.layers].sort((a, b) => key(b) - key(a) || a.name.localeCompare(b.name));
    return layers.map((layer) => {
      const node: LayerNode = { kind: 'layer', layer, label: layer.name, parent: root };
      this.layerNodes.set(layer.name, node);
      return node;
    });
  }

  private modelItem(node: ModelNode): vscode.TreeItem {
    const item = new vscode.TreeItem(basename(node.path), vscode.TreeItemCollapsibleState.Expanded);
    const model = this.session.model;
    const totals = this.session.totals();
    // A node of a model since replaced (the view may ask once more while it refreshes).
    if (!model || !totals || node.path !== this.session.path) return item;
    item.id = `model:${node.path}`;
    item.contextValue = 'model';
    item.iconPath = new vscode.ThemeIcon('symbol-structure');
    item.resourceUri = vscode.Uri.file(node.path);
    item.description = modelDescription(totals.original, totals.current);
    const tip = new vscode.MarkdownString();
    tip.appendMarkdown(`**${md(basename(node.path))}**\n\n`);
    tip.appendMarkdown(`| | |\n|---|---|\n`);
    tip.appendMarkdown(`| parameters | ${formatCount(totals.current)} |\n`);
    if (totals.original !== totals.current) tip.appendMarkdown(`| original | ${formatCount(totals.original)} (${formatSaved(totals.original, totals.current)}) |\n`);
    tip.appendMarkdown(`| layers | ${model.layers.length} (${model.layers.filter((l) => l.factorizable).length} factorizable) |\n`);
    tip.appendMarkdown(`| factorizable parameters | ${formatCount(model.summary.factorizableParams)} |\n`);
    const macs = this.session.macs;
    if (macs) tip.appendMarkdown(`| MACs per sample | ${macs.ok ? `${formatCount(macs.total)} (weight layers, ${macs.input.source === 'data' ? 'a data sample' : 'the declared input shape'})` : `not measured: ${md(macs.reason)}`} |\n`);
    item.tooltip = tip;
    return item;
  }

  private groupItem(node: GroupNode): vscode.TreeItem {
    const layers = collectLayers(node);
    const open = this.expanded.get(node.path) ?? layers.length <= 12;
    const item = new vscode.TreeItem(node.label, open ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed);
    item.id = `group:${node.path}`;
    item.contextValue = 'group';
    item.iconPath = new vscode.ThemeIcon('symbol-namespace');
    item.description = `${layers.length} · ${formatCount(layers.reduce((a, l) => a + l.params, 0))}`;
    item.tooltip = node.path;
    return item;
  }

  private layerItem(node: LayerNode): vscode.TreeItem {
    const { layer } = node;
    const spectrum = this.session.spectrum(layer.name);
    const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
    item.id = `layer:${layer.name}`;
    item.contextValue = layerContextValue(layer);
    item.description = layerDescription(layer, spectrum);
    item.command = { command: 'rankscope.showSpectrum', title: 'Show Spectrum', arguments: [node] };
    let chart: vscode.Uri | undefined;
    if (spectrum && spectrum.singularValues.length > 0) {
      const files = spectrumImages(this.imageDir, spectrum.hash, spectrum.singularValues, spectrum.metrics.energyRank['0.95']);
      item.iconPath = { light: vscode.Uri.file(files.icon.light), dark: vscode.Uri.file(files.icon.dark) };
      const dark = vscode.window.activeColorTheme.kind !== vscode.ColorThemeKind.Light
        && vscode.window.activeColorTheme.kind !== vscode.ColorThemeKind.HighContrastLight;
      chart = vscode.Uri.file(dark ? files.chart.dark : files.chart.light);
    } else {
      // Spinner while the background run computes it; factorized layers' spectra come on demand.
      item.iconPath = new vscode.ThemeIcon(layer.compressed ? 'layers' : layer.factorizable ? 'loading~spin' : 'symbol-field');
    }
    item.tooltip = layerTooltip(layer, spectrum, chart, this.session.macs);
    return item;
  }
}

function collectLayers(node: GroupNode): Layer[] {
  return node.children.flatMap((c) => (c.kind === 'layer' ? [c.layer] : c.kind === 'group' ? collectLayers(c) : []));
}

export function layerContextValue(layer: Layer): string {
  return `layer${layer.factorizable ? '+factorizable' : ''}${layer.compressed ? '+compressed' : ''}`;
}

/** `768×3072 · 2.36M · r95 412`; compressed: `768×3072 · 2.36M → 236K · rank 64`. */
export function layerDescription(layer: Layer, spectrum: LayerSpectrum | undefined): string {
  const shape = formatShape(layer.shape);
  if (layer.compressed) return `${shape} · ${formatCount(originalParams(layer))} → ${formatCount(layer.params)} · rank ${layer.compressed.rank}`;
  const parts = [shape, formatCount(layer.params)];
  if (spectrum) parts.push(`r95 ${spectrum.metrics.energyRank['0.95']}`);
  else if (!layer.factorizable) parts.push(layer.dtype);
  return parts.join(' · ');
}

export function modelDescription(original: number, current: number): string {
  return original === current
    ? `${formatCount(current)} params`
    : `${formatCount(original)} → ${formatCount(current)} params (${formatSaved(original, current)})`;
}

function layerTooltip(layer: Layer, spectrum: LayerSpectrum | undefined, chart: vscode.Uri | undefined, macs: MacsResult | undefined): vscode.MarkdownString {
  const tip = new vscode.MarkdownString();
  tip.appendMarkdown(`**${md(layer.name)}** — ${layer.op}\n\n| | |\n|---|---|\n`);
  const row = (k: string, v: string) => tip.appendMarkdown(`| ${k} | ${v} |\n`);
  row('matrix [out, in]', formatShape(layer.shape));
  row('stored tensor', `${md(layer.weight)} ${formatShape(layer.tensorShape)} ${layer.dtype}`);
  row('parameters', `${formatCount(layer.params)}${layer.biasParams ? ` + ${formatCount(layer.biasParams)} bias` : ''}`);
  if (layer.groups && layer.groups > 1) row('groups', String(layer.groups));
  if (macs?.ok) {
    const own = macs.layers.find((l) => l.layer === layer.name);
    if (own) row('MACs per sample', own.macs === null ? `not counted: ${md(own.note ?? '')}` : `${formatCount(own.macs)}${macs.total ? ` (${formatPercent(own.macs / macs.total)} of the model)` : ''}`);
  }
  if (layer.compressed) {
    const c = layer.compressed;
    row('compressed', `rank ${c.rank}, ${formatPercent(c.energyKept)} energy kept (${md(c.method)})`);
    row('original shape', formatShape(c.originalShape));
  }
  if (spectrum) {
    const m = spectrum.metrics;
    row('rank for 90 / 95 / 99 % energy', `${m.energyRank['0.9']} / ${m.energyRank['0.95']} / ${m.energyRank['0.99']}`);
    row('stable rank', m.stableRank.toFixed(1));
    row('effective rank', m.effectiveRank.toFixed(1));
    row('numerical rank', String(m.numericalRank));
    row('σ₁ · ‖W‖_F', `${m.spectral.toPrecision(4)} · ${m.frobenius.toPrecision(4)}`);
    if (m.alpha !== undefined && Number.isFinite(m.alpha)) row('power-law α', m.alpha.toFixed(2));
  }
  if (!layer.factorizable && layer.reason) row('not factorizable', md(layer.reason));
  if (layer.nodes.length > 1) row('shared by', `${layer.nodes.length} nodes`);
  if (chart) tip.appendMarkdown(`\n![spectrum of ${md(layer.name)}](${chart.toString()})\n`);
  else if (layer.factorizable && !layer.compressed) tip.appendMarkdown('\n_Computing the spectrum…_\n');
  return tip;
}

/** Escapes Markdown so names from untrusted files render as text. */
export function md(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>~]/g, (c) => `\\${c}`);
}

export function sparklineDir(storage: vscode.Uri): string {
  return join(storage.fsPath, 'sparklines');
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}
