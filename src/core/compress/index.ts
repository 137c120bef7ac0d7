// Low-rank compression: rank policies, budget plans, the ONNX graph rewrite, restore.
export { chooseRank, energyCurve, policyKind, type RankPolicy, type RankChoice, type FactorShape } from './policy';
export { allocateBudget, totalEnergyKept, type Allocation, type BudgetRequest } from './budget';
export {
  makePlan, parsePlan, selectLayers, layerHash, layerFactorShape, planTotals, PLAN_FORMAT, PLAN_VERSION,
  type Plan, type PlanLayer, type PlanTotals, type CompressRequest, type SpectrumLike,
} from './plan';
export { applyPlan, factorizePlan, planAndFactorize, planModel, compressToFile, recomposeLayers, restoreOriginalLayers, restoreInMemory, graphCheck, refuseOverwrite, type ApplyOptions, type PlannedFactors, type RestoredLayer } from './apply';
export { balancedFactors, factorize, multiply, truncateFactors, type Factors, type Triplets } from './factor';
export { planSpectra, matricesOf } from './spectra';
export { METHOD, RESTORED_METADATA_KEY, type RankscopeEntry } from './metadata';
