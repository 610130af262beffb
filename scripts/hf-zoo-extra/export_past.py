"""Optimum-style decoder-with-past export (TorchScript exporter) of a zoo model: inputs input_ids, attention_mask, position_ids,
past_key_values.N.key/value; outputs logits, present.N.key/value. usage: export_past.py ARCH_DIR OUT.onnx [float32|float16]"""
import sys, os, torch, numpy as np
import transformers as tf
from transformers import DynamicCache
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import patches; patches.apply()  # export-only, numerically identical rewrites (cohere rotary)
d = sys.argv[1]; out = sys.argv[2]; dtype = sys.argv[3] if len(sys.argv) > 3 else 'float32'
model = tf.AutoModelForCausalLM.from_pretrained(os.path.join(d, 'hf'), attn_implementation='eager').eval()
if dtype == 'float16': model = model.half()
cfg = model.config
L = cfg.num_hidden_layers; kvh = getattr(cfg, 'num_key_value_heads', cfg.num_attention_heads)
if getattr(cfg, 'model_type', '') == 'falcon':  # falcon: num_kv_heads, and 1 KV head when multi_query (old arch)
    kvh = 1 if (cfg.multi_query and not cfg.new_decoder_architecture) else cfg.num_kv_heads
hd = getattr(cfg, 'head_dim', None) or cfg.hidden_size // cfg.num_attention_heads
class W(torch.nn.Module):
    def __init__(s, m): super().__init__(); s.m = m
    def forward(s, input_ids, attention_mask, position_ids, *past):
        # full-length cache (DynamicLayer) for every layer, also for sliding-window families (mistral, gemma2/3,
        # starcoder2): present.N is [batch, kv_heads, total_sequence_length, head_dim] as documented, and the sliding
        # window is applied by the attention mask. DynamicCache(config=cfg) would keep only window-1 tokens there.
        cache = DynamicCache()
        for i in range(L): cache.update(past[2*i], past[2*i+1], i)
        o = s.m(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, past_key_values=cache, use_cache=True)
        pk = o.past_key_values
        outs = [o.logits]
        for i in range(L):
            layer = pk.layers[i]
            outs += [layer.keys, layer.values]
        return tuple(outs)
B, P, T = 2, 5, 3
dt = torch.float16 if dtype == 'float16' else torch.float32
past = []
for i in range(L): past += [torch.randn(B, kvh, P, hd, dtype=dt), torch.randn(B, kvh, P, hd, dtype=dt)]
ids = torch.randint(3, 512, (B, T)); am = torch.ones(B, P + T, dtype=torch.long); pos = torch.arange(P, P+T).expand(B, T)
names = ['input_ids', 'attention_mask', 'position_ids'] + [f'past_key_values.{i}.{k}' for i in range(L) for k in ('key', 'value')]
onames = ['logits'] + [f'present.{i}.{k}' for i in range(L) for k in ('key', 'value')]
dyn = {'input_ids': {0: 'batch_size', 1: 'sequence_length'}, 'attention_mask': {0: 'batch_size', 1: 'total_sequence_length'},
       'position_ids': {0: 'batch_size', 1: 'sequence_length'}, 'logits': {0: 'batch_size', 1: 'sequence_length'}}
for n in names[3:]: dyn[n] = {0: 'batch_size', 2: 'past_sequence_length'}
for n in onames[1:]: dyn[n] = {0: 'batch_size', 2: 'total_sequence_length'}
with torch.no_grad():
    torch.onnx.export(W(model), (ids, am, pos, *past), out, input_names=names, output_names=onames, dynamic_axes=dyn, opset_version=18, dynamo=False)
# check: empty past + full prompt, then one decode step
import onnxruntime as ort
s = ort.InferenceSession(out)
onn = {i.name for i in s.get_inputs()}  # bloom (ALiBi) uses no position_ids: the exporter drops that input
ids = torch.randint(3, 512, (2, 9)); am = torch.ones(2, 9, dtype=torch.long)
with torch.no_grad(): ref = model(input_ids=ids, attention_mask=am, use_cache=False).logits.float().numpy()
feed = {'input_ids': ids[:, :8].numpy(), 'attention_mask': am[:, :8].numpy(), 'position_ids': np.tile(np.arange(8), (2, 1))}
for i in range(L):
    for k in ('key', 'value'): feed[f'past_key_values.{i}.{k}'] = np.zeros((2, kvh, 0, hd), np.float16 if dtype == 'float16' else np.float32)
r = s.run(None, {k: v for k, v in feed.items() if k in onn})
d1 = np.abs(r[0].astype(np.float32) - ref[:, :8]).max()
feed2 = {'input_ids': ids[:, 8:].numpy(), 'attention_mask': am.numpy(), 'position_ids': np.full((2, 1), 8)}
for i in range(L):
    feed2[f'past_key_values.{i}.key'] = r[1 + 2*i]; feed2[f'past_key_values.{i}.value'] = r[2 + 2*i]
r2 = s.run(None, {k: v for k, v in feed2.items() if k in onn})
d2 = np.abs(r2[0].astype(np.float32) - ref[:, 8:]).max()
print('export ok', out, 'prefill maxdiff', d1, 'decode maxdiff', d2)
