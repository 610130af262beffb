"""Build small *trained* Hugging Face decoder models of many architectures and export them to ONNX
with PyTorch's two exporters (TorchScript: dynamo=False, and torch.export: dynamo=True).

Each model: 6 layers, hidden 64, 4 heads (2 KV heads where the family has GQA), vocab 512 (a byte-level
BPE tokenizer trained here), trained for a few hundred steps on the TinyStories sample so that layers
differ in importance. Written per arch: hf/ (save_pretrained: config.json, model.safetensors),
model.ts.onnx, model.dynamo.onnx (inputs input_ids, attention_mask; output logits), SOURCE.json.

usage: python build.py OUT_DIR [arch ...]
"""
import json, math, os, sys, time, random
import numpy as np
import torch
import transformers as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT = os.path.join(HERE, '..', '..', '..', 'shared', 'data', 'tinystories-valid-sample', 'tinystories_val.txt')
L, H, I, NH, KV, V = 6, 64, 176, 4, 2, 512

COMMON = dict(vocab_size=V, hidden_size=H, intermediate_size=I, num_hidden_layers=L, num_attention_heads=NH,
              max_position_embeddings=256, pad_token_id=0, bos_token_id=1, eos_token_id=2)


def configs():
    c = {}
    c['llama'] = tf.LlamaConfig(**COMMON, num_key_value_heads=KV, tie_word_embeddings=False)
    c['qwen2'] = tf.Qwen2Config(**COMMON, num_key_value_heads=KV, tie_word_embeddings=True)
    c['qwen3'] = tf.Qwen3Config(**COMMON, num_key_value_heads=KV, head_dim=16, tie_word_embeddings=True)
    c['phi3'] = tf.Phi3Config(**COMMON, num_key_value_heads=KV, tie_word_embeddings=False)
    c['gemma'] = tf.GemmaConfig(**COMMON, num_key_value_heads=1, head_dim=16)
    c['phi'] = tf.PhiConfig(**COMMON, partial_rotary_factor=0.5)
    c['gptneox'] = tf.GPTNeoXConfig(**COMMON, use_parallel_residual=True, rotary_pct=0.25,
                                    tie_word_embeddings=False)
    c['gpt2'] = tf.GPT2Config(vocab_size=V, n_embd=H, n_layer=L, n_head=NH, n_positions=256, n_inner=I,
                              pad_token_id=0, bos_token_id=1, eos_token_id=2)
    c['opt'] = tf.OPTConfig(vocab_size=V, hidden_size=H, num_hidden_layers=L, ffn_dim=I, num_attention_heads=NH,
                            max_position_embeddings=256, word_embed_proj_dim=H, pad_token_id=0,
                            bos_token_id=1, eos_token_id=2)

    # --- extra families (zoo-extra) ---
    c['mistral'] = tf.MistralConfig(**COMMON, num_key_value_heads=KV, sliding_window=8, tie_word_embeddings=False)
    c['gemma2'] = tf.Gemma2Config(**COMMON, num_key_value_heads=KV, head_dim=16, sliding_window=8,
                                  attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                                  query_pre_attn_scalar=16)
    c['gemma3'] = tf.Gemma3TextConfig(**COMMON, num_key_value_heads=KV, head_dim=16, sliding_window=8,
                                      sliding_window_pattern=2, query_pre_attn_scalar=16)
    c['granite'] = tf.GraniteConfig(**COMMON, num_key_value_heads=KV, embedding_multiplier=6.0,
                                    residual_multiplier=0.5, logits_scaling=2.0, attention_multiplier=0.2,
                                    tie_word_embeddings=False)
    c['olmo2'] = tf.Olmo2Config(**COMMON, num_key_value_heads=KV, tie_word_embeddings=False)
    c['cohere'] = tf.CohereConfig(**COMMON, num_key_value_heads=KV, logit_scale=0.5, use_qk_norm=False)
    c['stablelm'] = tf.StableLmConfig(**COMMON, num_key_value_heads=KV, partial_rotary_factor=0.25,
                                      use_parallel_residual=False, tie_word_embeddings=False)
    c['stablelm-parallel'] = tf.StableLmConfig(**COMMON, num_key_value_heads=KV, partial_rotary_factor=0.25,
                                               use_parallel_residual=True, tie_word_embeddings=False)
    c['falcon'] = tf.FalconConfig(vocab_size=V, hidden_size=H, num_hidden_layers=L, num_attention_heads=NH,
                                  ffn_hidden_size=I, new_decoder_architecture=False, multi_query=True,
                                  parallel_attn=True, alibi=False, bias=False, max_position_embeddings=256,
                                  pad_token_id=0, bos_token_id=1, eos_token_id=2)
    c['gptj'] = tf.GPTJConfig(vocab_size=V, n_embd=H, n_layer=L, n_head=NH, n_inner=I, n_positions=256,
                              rotary_dim=8, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                              tie_word_embeddings=False)
    c['bloom'] = tf.BloomConfig(vocab_size=V, hidden_size=H, n_layer=L, n_head=NH,
                                pad_token_id=0, bos_token_id=1, eos_token_id=2)
    c['starcoder2'] = tf.Starcoder2Config(**COMMON, num_key_value_heads=KV, sliding_window=8,
                                          tie_word_embeddings=True)
    c['qwen2_moe'] = tf.Qwen2MoeConfig(**COMMON, num_key_value_heads=KV, num_experts=4, num_experts_per_tok=2,
                                       moe_intermediate_size=48, shared_expert_intermediate_size=96,
                                       decoder_sparse_step=1, mlp_only_layers=[], tie_word_embeddings=False)
    c['mixtral'] = tf.MixtralConfig(**COMMON, num_key_value_heads=KV, num_local_experts=4,
                                    num_experts_per_tok=2, sliding_window=None, tie_word_embeddings=False)
    return c


def tokenizer(out):
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
    path = os.path.join(out, 'tokenizer.json')
    if os.path.exists(path):
        return Tokenizer.from_file(path)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=V, special_tokens=['<pad>', '<s>', '</s>'],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train([TEXT], trainer)
    tok.save(path)
    with open(os.path.join(out, 'tokenizer_config.json'), 'w') as f:
        json.dump({'tokenizer_class': 'PreTrainedTokenizerFast', 'bos_token': '<s>', 'eos_token': '</s>',
                   'pad_token': '<pad>', 'model_max_length': 256}, f, indent=1)
    return tok


class Logits(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


def train(model, ids, steps, seq=128, batch=16, lr=3e-3):
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    n = len(ids) - seq - 1
    for step in range(steps):
        starts = torch.randint(0, n, (batch,), generator=g)
        x = torch.stack([ids[s:s + seq] for s in starts])
        loss = model(input_ids=x, labels=x, use_cache=False).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    model.eval()
    return float(loss)


def export(model, path, dynamo):
    import patches  # export-only, numerically identical rewrites (see patches.py)
    patches.apply()
    w = Logits(model).eval()
    ids = torch.randint(3, V, (2, 12))
    mask = torch.ones_like(ids)
    kw = dict(input_names=['input_ids', 'attention_mask'], output_names=['logits'], opset_version=18,
              dynamic_axes={'input_ids': {0: 'batch', 1: 'sequence'}, 'attention_mask': {0: 'batch', 1: 'sequence'},
                            'logits': {0: 'batch', 1: 'sequence'}})
    with torch.no_grad():
        if dynamo:
            torch.onnx.export(w, (ids, mask), path, dynamo=True, external_data=False, **kw)
        else:
            torch.onnx.export(w, (ids, mask), path, dynamo=False, do_constant_folding=True, **kw)


def export_moe_aware(model, path, dynamo):
    """MoE families (mixtral, qwen2_moe): transformers 5's default experts implementation ('grouped_mm') uses
    torch.histc, which neither exporter converts; export with the 'batched_mm' implementation (gather each token's
    top-k expert weights, bmm, weighted sum: same function, differs by float rounding ~1e-6), then switch back so
    that check_export compares against the default implementation, as reference.py / check.py load it."""
    moe = any(n.endswith('.experts') for n, _ in model.named_modules())
    if not moe:
        return export(model, path, dynamo)
    default = model.config._experts_implementation
    model.set_experts_implementation('batched_mm')
    try:
        export(model, path, dynamo)
    finally:
        model.set_experts_implementation(default)


def check_export(model, path):
    import onnxruntime as ort
    s = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    ids = torch.randint(3, V, (3, 37))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask, use_cache=False).logits.numpy()
    got = s.run(['logits'], {'input_ids': ids.numpy(), 'attention_mask': mask.numpy()})[0]
    return float(np.abs(ref - got).max())


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    tok = tokenizer(out)
    text = open(TEXT, encoding='utf-8').read()
    ids = torch.tensor(tok.encode(text).ids, dtype=torch.long)
    cfgs = configs()
    names = sys.argv[2:] or list(cfgs)
    for name in names:
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        rec = {'arch': name, 'transformers': tf.__version__, 'torch': torch.__version__}
        t0 = time.time()
        try:
            torch.manual_seed(0)
            cfg = cfgs[name]
            cfg._attn_implementation = 'eager'
            model = tf.AutoModelForCausalLM.from_config(cfg, attn_implementation='eager')
            rec['params'] = sum(p.numel() for p in model.parameters())
            rec['train_loss'] = train(model, ids, steps=int(os.environ.get('ZOO_STEPS', 300)))
            model.save_pretrained(os.path.join(d, 'hf'))
        except Exception as e:  # noqa: BLE001 - a family that fails to build is recorded, not fatal
            rec['build_error'] = repr(e)[:400]
            json.dump(rec, open(os.path.join(d, 'SOURCE.json'), 'w'), indent=1)
            print(name, 'BUILD FAILED', rec['build_error'][:200], flush=True)
            continue
        for exp, dyn in (('ts', False), ('dynamo', True)):
            p = os.path.join(d, f'model.{exp}.onnx')
            try:
                export_moe_aware(model, p, dyn)
                rec[f'{exp}_maxdiff'] = check_export(model, p)
            except Exception as e:  # noqa: BLE001
                rec[f'{exp}_error'] = repr(e)[:400]
                if os.path.exists(p):
                    os.remove(p)
        rec['seconds'] = round(time.time() - t0, 1)
        json.dump(rec, open(os.path.join(d, 'SOURCE.json'), 'w'), indent=1)
        print(name, {k: v for k, v in rec.items() if k not in ('transformers', 'torch')}, flush=True)


if __name__ == '__main__':
    main()
