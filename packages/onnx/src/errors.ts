import { UserError } from '@evop/config';
/** Why a model was refused; stable strings that API clients can branch on. */
export type ModelErrorCode =
  | 'unreadable'
  | 'not-decoder'
  | 'fused-operator'
  | 'unknown-pattern'
  | 'unsupported-format'
  | 'not-finite';

/** A model file evop cannot use, with the reason in words a user can act on. */
export class ModelError extends UserError {
  override readonly name = 'ModelError';
  constructor(
    readonly code: ModelErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A mask that does not fit the model's units or the requested target. */
export class MaskError extends UserError {
  override readonly name = 'MaskError';
}
