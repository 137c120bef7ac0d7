// Public surface of the linear-algebra core.
export { singularValues, type MatrixData } from './singularValues';
export { topSingularTriplets, type SingularTriplets, type RankChooser } from './triplets';
export { spectrumMetrics, rankForEnergy, type SpectrumMetrics } from './metrics';
export { fitPowerLaw, type PowerLawFit } from './powerLaw';
export { computeSpectra, spectrumCacheKey, spectrumLayers, type LayerSpectrum, type ComputeSpectraOptions } from './spectra';
export { SpectrumCache, defaultSpectrumCacheDir } from './cache';
