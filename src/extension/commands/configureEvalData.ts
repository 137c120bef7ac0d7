// Configure Evaluation Data…: picks the .npz/.npy the model is scored on, checks it at once against
// the model's inputs (the open model, else the task file's `model`) exactly as an evaluation will
// bind it — a file that does not fit is refused with the reason and nothing is written — and
// records it in the rankscope.json that goes with the model (the task file the CLI reads too):
// `data`, `preset` (NTU when the arrays look like NTU skeletons), the `inputs` and `labels` arrays
// it was checked with. Fields that described the previous data (`inputs`/`labels` naming arrays
// the new file lacks, `ntu` without the preset) are dropped. The file is edited in place
// (jsonc-parser), so the user's comments, order and formatting stay. Tests pass `{ data, preset }`.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { applyEdits, modify, parse, type FormattingOptions, type ParseError } from 'jsonc-parser';
import * as vscode from 'vscode';
import { RankscopeError } from '../../core/errors';
import { writeFileAtomic } from '../../core/fs/atomicWrite';
import { loadDataset, type DatasetSpec } from '../../core/eval/dataset';
import { openArrayFile } from '../../core/eval/npz';
import { NTU_FRAME_SIZE } from '../../core/eval/ntu';
import type { TensorInfo } from '../../core/eval/runner';
import { validateTask, type TaskFile } from '../../core/eval/task';
import { openOnnxModel } from '../../core/formats';
import type { Model } from '../../core/model/types';
import { taskFilePath, taskPath as resolveTaskPath } from '../evalTask';
import { log } from '../log';
import type { RankscopeCommand } from './command';
import { optionsArg } from './layerArgs';

/** NTU skeletons: x arrays (N, T, 150) next to one-hot or index labels. */
async function looksLikeNtu(path: string): Promise<boolean> {
  const file = await openArrayFile(path);
  try {
    const key = file.keys.find((k) => k === 'x_test') ?? file.keys.find((k) => k.startsWith('x'));
    if (!key) return false;
    const shape = (await file.array(key)).shape;
    return shape.length === 3 && shape[2] === NTU_FRAME_SIZE;
  } finally {
    await file.close();
  }
}

/** The model's inputs as ONNX Runtime reports them (unknown dims −1). */
function inputsOf(model: Model): TensorInfo[] {
  return model.summary.inputs.map((i) => ({ name: i.name, type: i.dtype, shape: (i.shape ?? []).map((d) => (d === null ? -1 : d)) }));
}

/** Binds `spec` to the model like an evaluation does; returns the arrays it used (throws when the data does not fit). */
async function check(spec: DatasetSpec, model: Model): Promise<{ inputs: Record<string, string>; labels: string | undefined; size: number }> {
  const dataset = await loadDataset(spec, inputsOf(model));
  try {
    const labels = dataset.labelKey;
    const output = model.summary.outputs[0];
    const classes = output?.shape?.at(-1);
    if (labels && typeof classes === 'number' && classes > 0) {
      const file = await openArrayFile(spec.data);
      try {
        const shape = (await file.array(labels)).shape;
        if (shape.length === 2 && shape[1] !== classes) {
          throw new RankscopeError('SHAPE_MISMATCH', `${spec.data}:${labels} has ${shape[1]} classes per sample; the model's output '${output!.name}' has ${classes}.`,
            'Choose the data this model was trained for, or set "labels" in rankscope.json.');
        }
      } finally {
        await file.close();
      }
    }
    return { inputs: dataset.inputKeys, labels, size: dataset.size };
  } finally {
    await dataset.close();
  }
}

/** Indentation of an existing JSON text (first indented line), so new fields look like the old ones. */
function formattingOf(text: string): FormattingOptions {
  const indent = /\n([ \t]+)\S/.exec(text)?.[1] ?? '  ';
  return { insertSpaces: !indent.includes('\t'), tabSize: indent.includes('\t') ? 1 : indent.length, eol: text.includes('\r\n') ? '\r\n' : '\n' };
}

async function modelFor(session: { model?: Model }, task: TaskFile, taskFile: string): Promise<Model> {
  if (session.model) return session.model;
  if (task.model) return openOnnxModel(resolveTaskPath(taskFile, task.model));
  throw new RankscopeError('BAD_ARGUMENT', 'Open the model first: the evaluation data is checked against its inputs.', 'Run "Rankscope: Open Model…", then this command again.');
}

export const configureEvalData: RankscopeCommand = {
  id: 'rankscope.configureEvalData',
  action: 'Configure evaluation data',
  run: async (s, ...args) => {
    const taskFile = taskFilePath(s.session.path);
    if (!taskFile) throw new RankscopeError('BAD_ARGUMENT', 'Open a folder first: the evaluation data is recorded in its rankscope.json.');
    const given = optionsArg<{ data: string; preset: 'ntu' | 'none' }>(args);
    const text = existsSync(taskFile) ? await readFile(taskFile, 'utf8') : '{}\n';
    const errors: ParseError[] = [];
    const task = (parse(text, errors, { allowTrailingComma: true }) ?? {}) as TaskFile;
    if (errors.length) {
      throw new RankscopeError('CORRUPT', `${taskFile} is not valid JSON (at offset ${errors[0]!.offset}).`, 'Fix it, then run this command again.');
    }
    // Before any prompt: without a model there is nothing to check the data against.
    const model = await modelFor(s.session, task, taskFile);
    let data = given.data;
    if (!data) {
      const picked = await vscode.window.showOpenDialog({
        title: 'Evaluation data', openLabel: 'Use for Evaluation', canSelectMany: false,
        filters: { 'NumPy arrays': ['npz', 'npy'] }, defaultUri: vscode.Uri.file(dirname(taskFile)),
      });
      data = picked?.[0]?.fsPath;
    }
    if (!data) return undefined;
    if (!existsSync(data)) throw new RankscopeError('NOT_FOUND', `Data file not found: ${data}`);
    const preset = given.preset ?? ((await looksLikeNtu(data)) ? 'ntu' : 'none');
    const ntu = preset === 'ntu' ? task.ntu : undefined;
    // The arrays the file named for the previous data, if they still fit; else found afresh.
    let found: Awaited<ReturnType<typeof check>>;
    try {
      found = await check({ data, preset, ntu, inputs: task.inputs, labels: task.labels }, model);
    } catch (e) {
      if (task.inputs === undefined && task.labels === undefined) throw e;
      found = await check({ data, preset, ntu }, model);
    }
    const rel = relative(dirname(taskFile), data);
    const fields: Partial<Record<keyof TaskFile, unknown>> = {
      data: rel.startsWith('..') ? data : rel, preset, inputs: found.inputs, labels: found.labels, ntu,
    };
    const updated: Record<string, unknown> = { ...task, ...fields };
    for (const [k, v] of Object.entries(updated)) if (v === undefined) delete updated[k];
    validateTask(updated, taskFile);
    // Edits that leave the rest of the text alone: jsonc-parser re-formats the lines an edit
    // touches, so removals are not formatted, changed values re-indent only themselves, and new
    // fields go in at the top (after `{`) rather than after the last field, whose line would be redone.
    const formatting = formattingOf(text);
    const old = task as Record<string, unknown>;
    const changed = Object.entries(fields).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(old[k]));
    let out = text;
    for (const [key, value] of changed.filter(([k]) => k in old)) {
      out = applyEdits(out, modify(out, [key], value, value === undefined ? {} : { formattingOptions: formatting }));
    }
    for (const [key, value] of changed.filter(([k]) => !(k in old)).reverse()) {
      out = applyEdits(out, modify(out, [key], value, { formattingOptions: formatting, getInsertionIndex: () => 0 }));
    }
    await writeFileAtomic(taskFile, out);
    log().info(`Evaluation data: ${data} (preset ${preset}, inputs ${JSON.stringify(found.inputs)}, labels ${found.labels ?? 'none'}, ${found.size} samples) checked against ${model.summary.path} and recorded in ${taskFile}`);
    if (!given.data) {
      void vscode.window.showInformationMessage(`Rankscope: evaluation data set in rankscope.json (${found.size} samples fit the model's inputs${preset === 'ntu' ? ', NTU skeleton preset' : ''}).`, 'Open rankscope.json')
        .then((c) => c && vscode.window.showTextDocument(vscode.Uri.file(taskFile)));
    }
    return taskFile;
  },
};
