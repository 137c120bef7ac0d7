// Every command the extension registers (each in its own file).
import type { RankscopeCommand } from './command';
import { checkFinetuneEnvironment } from './checkFinetuneEnvironment';
import { closeModel } from './closeModel';
import { compressLayer, compressLayers } from './compressLayers';
import { compressModelToBudget } from './compressModelToBudget';
import { configureEvalData } from './configureEvalData';
import { copyName } from './copyName';
import { exportReport } from './exportReport';
import { finetune } from './finetune';
import { openModel } from './openModel';
import { openSampleModel } from './openSampleModel';
import { recomposeToDense, restoreOriginalWeights } from './restoreLayer';
import { resumeFinetune } from './resumeFinetune';
import { showInLayers } from './showInLayers';
import { showLog } from './showLog';
import { showSpectrum } from './showSpectrum';
import { showTradeoff } from './showTradeoff';
import { sortLayers } from './sortLayers';

export const commands: RankscopeCommand[] = [
  openModel, openSampleModel, closeModel, compressLayer, compressLayers, compressModelToBudget, restoreOriginalWeights, recomposeToDense,
  showSpectrum, showInLayers, copyName, sortLayers, showTradeoff, finetune, resumeFinetune, checkFinetuneEnvironment,
  configureEvalData, exportReport, showLog,
];
