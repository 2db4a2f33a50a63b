// A tuning job's source model. base_model and pre_tuned_model are one oneof (source_model) in
// TuningJob: a continuous tuning job has no top-level baseModel; its base is preTunedModel.baseModel
// and it starts from preTunedModel.tunedModelName (at checkpointId, when given).

export interface JobSource { base: string; tunedModel?: string; checkpointId?: string }

export function jobSource(job: Record<string, any>): JobSource {
  const pre = job.preTunedModel as Record<string, any> | undefined;
  if (pre) {
    return {
      base: String(pre.baseModel ?? ''), tunedModel: String(pre.tunedModelName ?? ''),
      ...(pre.checkpointId !== undefined ? { checkpointId: String(pre.checkpointId) } : {}),
    };
  }
  return { base: String(job.baseModel ?? '') };
}

/** A publisher model's short name (gemma3-tiny for publishers/google/models/gemma3-tiny). */
export const shortModel = (name: string): string => name.replace(/^publishers\/[^/]+\/models\//, '');
