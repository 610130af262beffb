import type { RuntimeConfig } from '@evop/config';
import { UserError } from '@evop/config';
import * as ort from 'onnxruntime-node';

/** The provider a session was created on. */
export type Provider = 'cuda' | 'cpu';

/** `EVOP_PROVIDER=cuda` where onnxruntime's CUDA provider cannot load. */
export class ProviderUnavailableError extends UserError {
  override readonly name = 'ProviderUnavailableError';
}

export type SessionSettings = Pick<
  RuntimeConfig,
  'provider' | 'deviceId' | 'intraOpThreads' | 'graphOptimization' | 'prepack'
> & {
  /** false: onnxruntime's intra-op threads block as soon as a run ends instead of spinning (`SessionTuning`). */
  spinning?: boolean;
};

function options(settings: SessionSettings, provider: Provider): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: provider === 'cuda' ? [{ name: 'cuda', deviceId: settings.deviceId }] : ['cpu'],
    intraOpNumThreads: settings.intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: settings.graphOptimization,
    logSeverityLevel: 3,
    // Without prepacking, sessions read the weights onnxruntime maps from the external-data file: one copy.
    extra: {
      session: {
        disable_prepacking: settings.prepack ? '0' : '1',
        ...(settings.spinning === false ? { 'intra_op.allow_spinning': '0' } : {}),
      },
    },
  };
}

/**
 * Creates a session on the configured provider. onnxruntime-node has no automatic fallback (`['cuda', 'cpu']`
 * throws when CUDA cannot load), so `auto` tries CUDA alone, then CPU, reporting the fallback once through
 * `warn`; `cuda` throws a ProviderUnavailableError saying what to install.
 */
export async function createSession(
  modelPath: string,
  settings: SessionSettings,
  warn: (message: string) => void = () => {},
): Promise<{ session: ort.InferenceSession; provider: Provider }> {
  if (settings.provider === 'cpu')
    return {
      session: await ort.InferenceSession.create(modelPath, options(settings, 'cpu')),
      provider: 'cpu',
    };
  try {
    return {
      session: await ort.InferenceSession.create(modelPath, options(settings, 'cuda')),
      provider: 'cuda',
    };
  } catch (err) {
    const reason = (err as Error).message.split('\n')[0];
    if (settings.provider === 'cuda')
      throw new ProviderUnavailableError(
        `EVOP_PROVIDER=cuda, but onnxruntime's CUDA provider did not load (${reason}). Install onnxruntime-node ` +
          'with ONNXRUNTIME_NODE_INSTALL=cuda12 on a machine with an NVIDIA driver and CUDA 12, or set EVOP_PROVIDER=cpu.',
      );
    warn(`CUDA provider unavailable (${reason}); running on CPU`);
    return {
      session: await ort.InferenceSession.create(modelPath, options(settings, 'cpu')),
      provider: 'cpu',
    };
  }
}

/** The onnxruntime version this build runs, for reports. */
export function onnxruntimeVersion(): string {
  return ort.env.versions.common ?? 'unknown';
}
