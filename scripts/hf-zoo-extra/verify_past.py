"""Extra check of a KV-cache export (beyond export_past.py's own): prefill 20 tokens with an empty past, then 3 single-token
decode steps feeding present back as past; compare logits to transformers (use_cache=False on the whole sequence).
usage: verify_past.py ARCH_DIR MODEL.onnx   prints JSON {prefill, decode, present_len}"""
import sys, os, json, numpy as np, torch, onnxruntime as ort, transformers as tf
d, path = sys.argv[1:3]
model = tf.AutoModelForCausalLM.from_pretrained(os.path.join(d, 'hf'), attn_implementation='eager').eval()
s = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
ins = {i.name: i for i in s.get_inputs()}
fp16 = 'float16' in ins['past_key_values.0.key'].type
if fp16: model = model.half()
L = model.config.num_hidden_layers
g = torch.Generator().manual_seed(3)
P, N = 20, 3
ids = torch.randint(3, 512, (2, P + N), generator=g)
with torch.no_grad(): ref = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False).logits.float().numpy()
feed = {'input_ids': ids[:, :P].numpy(), 'attention_mask': np.ones((2, P), np.int64), 'position_ids': np.tile(np.arange(P), (2, 1))}
for n, i in ins.items():
    if n.startswith('past_key_values'):
        feed[n] = np.zeros([2 if j == 0 else (0 if j == 2 else x) for j, x in enumerate(i.shape)], np.float16 if fp16 else np.float32)
outs = [o.name for o in s.get_outputs()]
r = dict(zip(outs, s.run(None, {k: x for k, x in feed.items() if k in ins})))
res = {'prefill': float(np.abs(r['logits'].astype(np.float32) - ref[:, :P]).max()), 'decode': 0.0}
for t in range(P, P + N):
    feed = {'input_ids': ids[:, t:t + 1].numpy(), 'attention_mask': np.ones((2, t + 1), np.int64), 'position_ids': np.full((2, 1), t)}
    for i in range(L):
        feed[f'past_key_values.{i}.key'] = r[f'present.{i}.key']; feed[f'past_key_values.{i}.value'] = r[f'present.{i}.value']
    r = dict(zip(outs, s.run(None, {k: x for k, x in feed.items() if k in ins})))
    res['decode'] = max(res['decode'], float(np.abs(r['logits'].astype(np.float32)[:, 0] - ref[:, t]).max()))
res['present_len'] = int(r['present.0.key'].shape[2])
print(json.dumps(res))
