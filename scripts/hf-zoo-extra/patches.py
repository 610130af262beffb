"""Export-only monkeypatches, numerically identical to transformers' own code, for ops the TorchScript exporter
traces with fixed shapes. Imported by build.py, export_past.py and reexport.py.

cohere: CohereRotaryEmbedding uses torch.repeat_interleave(freqs, 2, dim=-1); traced by the TorchScript exporter it
bakes the traced sequence length / batch into an Expand ('invalid expand shape' at another length). Replaced by
stack+flatten, which produces the same tensor (each frequency repeated twice, interleaved)."""
import torch


def apply():
    try:
        from transformers.models.cohere import modeling_cohere as mc
    except Exception:  # noqa: BLE001
        return
    from transformers.utils.generic import maybe_autocast  # noqa: F401  (only to fail loudly if absent)

    def forward(self, x, position_ids):
        with torch.no_grad():
            inv_freq_expanded = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
            position_ids_expanded = position_ids[:, None, :].float()
            freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
            emb = torch.stack([freqs, freqs], dim=-1).flatten(-2)
            cos = emb.cos() * self.attention_scaling
            sin = emb.sin() * self.attention_scaling
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)

    mc.CohereRotaryEmbedding.forward = forward
