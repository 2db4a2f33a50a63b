// The fields of the API's JSON that the CLI client reads (proto3 JSON of google.cloud.aiplatform.v1;
// the server builds them in src/api/routes). Job states are the platform's own type.

import type { JobError, JobState } from '../platform/jobs.js';

export type { JobState };

export interface TuningJob {
  name: string;
  state: JobState;
  /** base_model and pre_tuned_model are one oneof (source_model): a continuous tuning job has the latter. */
  baseModel?: string;
  preTunedModel?: { tunedModelName?: string; checkpointId?: string; baseModel?: string };
  tunedModelDisplayName?: string;
  description?: string;
  labels?: Record<string, string>;
  supervisedTuningSpec?: {
    trainingDatasetUri?: string;
    validationDatasetUri?: string;
    hyperParameters?: { epochCount?: string; adapterSize?: string; learningRateMultiplier?: number };
  };
  createTime?: string;
  startTime?: string;
  endTime?: string;
  updateTime?: string;
  error?: JobError;
  tunedModel?: { model?: string; endpoint?: string; checkpoints?: { checkpointId: string; epoch?: string; step?: string; endpoint?: string }[] };
  tuningDataStats?: { supervisedTuningDataStats?: { tuningDatasetExampleCount?: string; tuningStepCount?: string; totalBillableTokenCount?: string } };
}

export interface MetricSeries {
  name: string;
  points: { step: string; epoch?: string; value: number; time: string }[];
}

export interface TuningJobMetrics {
  tuningJob: string;
  metrics: MetricSeries[];
}

export interface Model {
  name: string;
  displayName?: string;
  versionId?: string;
  versionAliases?: string[];
  versionCreateTime?: string;
  artifactUri?: string;
  deployedModels?: { endpoint: string; deployedModelId: string }[];
  checkpoints?: { checkpointId: string; epoch?: string; step?: string }[];
  baseModelSource?: { modelGardenSource?: { publicModelName?: string } };
  labels?: Record<string, string>;
  createTime?: string;
  updateTime?: string;
}

export interface DeployedModel {
  id: string;
  model: string;
  modelVersionId?: string;
  checkpointId?: string;
  displayName?: string;
  createTime?: string;
}

export interface Endpoint {
  name: string;
  displayName?: string;
  deployedModels?: DeployedModel[];
  trafficSplit?: Record<string, number>;
  labels?: Record<string, string>;
  createTime?: string;
  updateTime?: string;
}

export interface Operation {
  name: string;
  done?: boolean;
  error?: { code?: number; message?: string };
  response?: Record<string, unknown>;
}

export interface ListResponse<T> {
  items: T[];
}
