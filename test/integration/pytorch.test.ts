// A PyTorch checkpoint and a safetensors file in the real extension host: the Layers tree lists
// their layers by module path, spectra match numpy's, and the overview editor opens them.
import * as assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { runPython } from '../helpers/python';
import { api, layerNodes, openAndSettle, waitFor } from './api';

const script = String.raw`
import json, sys, numpy as np, torch, torch.nn as nn
sys.path.insert(0, sys.argv[2])
from rankscope_worker import safetensors
torch.manual_seed(0)
m = nn.Sequential(nn.Conv1d(6, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 8, 24), nn.ReLU(), nn.Linear(24, 10))
torch.save({'epoch': 1, 'state_dict': nn.DataParallel(m).state_dict()}, sys.argv[1] + '/net.pt')
safetensors.write(sys.argv[1] + '/net.safetensors', {k: v.numpy() for k, v in m.state_dict().items()})
sv = {k[:-len('.weight')]: np.linalg.svd(v.double().reshape(v.shape[0], -1).numpy(), compute_uv=False).tolist()
      for k, v in m.state_dict().items() if k.endswith('weight')}
print(json.dumps(sv))
`;

suite('PyTorch checkpoints and safetensors', () => {
  let dir: string;
  let sv: Record<string, number[]>;
  suiteSetup(() => {
    dir = mkdtempSync(join(tmpdir(), 'rankscope-it-pt-'));
    const worker = join(__dirname, '..', '..', '..', 'src', 'worker', 'python'); // from out/test/integration
    sv = JSON.parse(runPython(script, [dir, worker]));
  });

  for (const file of ['net.pt', 'net.safetensors']) {
    test(`${file}: the Layers tree lists its layers by module path, with numpy's spectra`, async () => {
      const a = await api();
      await openAndSettle(a, join(dir, file));
      assert.equal(a.session.model!.summary.format, file.endsWith('.pt') ? 'pytorch' : 'safetensors');
      assert.deepEqual(layerNodes(a).map((n) => n.layer.name).sort(), ['0', '3', '5']);
      const spectra = await a.session.ensureSpectra(['0', '3', '5']);
      for (const s of spectra) {
        const ref = sv[s.layer];
        ref.forEach((v, i) => assert.ok(Math.abs(s.singularValues[i] - v) <= 1e-6 * ref[0], `${s.layer} σ${i}: ${s.singularValues[i]} vs numpy ${v}`));
      }
    });
  }

  test('the overview editor opens a .pt file', async () => {
    const a = await api();
    const path = join(dir, 'net.pt');
    await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(path), 'rankscope.modelOverview');
    const loaded = await waitFor('overview loaded', () => a.overview.loaded.get(path));
    assert.equal(loaded.summary.format, 'pytorch');
    assert.equal(loaded.summary.layerCount, 3);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });
});
