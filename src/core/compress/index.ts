// Low-rank compression: rank policies, budget plans, the ONNX graph rewrite, restore.
export { chooseRank, energyCurve, layerFactorShape, policyKind, type RankPolicy, type RankChoice, type FactorShape } from './policy';
export { allocateBudget, ALLOCATIONS, isAllocation, totalEnergyKept, type Allocation, type BudgetRequest } from './budget';
export {
  isCompressible, makePlan, parsePlan, selectLayers, layerHash, planTotals, PLAN_FORMAT, PLAN_VERSION,
  type Plan, type PlanLayer, type PlanTotals, type CompressRequest, type SpectrumLike,
} from './plan';
export { applyPlan, calibrationCandidates, factorizePlan, planAndFactorize, planModel, compressToFile, recomposeLayers, restoreOriginalLayers, restoreInMemory, graphCheck, WHITENED_METHOD, whitenedSpectraOf, withWhitenedSpectra, type ApplyOptions, type PlannedFactors, type RestoredLayer, type WhiteningSource } from './apply';
export { balancedFactors, factorize, multiply, truncateFactors, type Factors, type Triplets } from './factor';
export { layerSpectra, planSpectra, matricesOf, type LayerSpectraOptions } from './spectra';
export { METHOD, readEntries, RESTORED_METADATA_KEY, type RankscopeEntry } from './metadata';
