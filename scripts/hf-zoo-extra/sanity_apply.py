"""Sanity of check.apply() for each family: with every attention (resp. MLP) sub-block removed, the removed
sub-blocks' contributions to the residual stream are exactly zero (checked by hooks on the output projection's
consumer modules), and every reference mask changes the logits. usage: sanity_apply.py OUT_DIR fam ..."""
import os, sys, json, numpy as np, torch, transformers as tf
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check import apply, layers_of
out = sys.argv[1]
for fam in sys.argv[2:]:
    d = os.path.join(out, fam)
    res = {}
    for kind, mask in (('attn', '01' * 6), ('mlp', '10' * 6)):
        m = tf.AutoModelForCausalLM.from_pretrained(os.path.join(d, 'hf'), attn_implementation='eager').eval()
        apply(m, mask)
        _, layers = layers_of(m)
        seen = []
        for layer in layers:
            if kind == 'attn':
                mod = next(getattr(layer, n) for n in ('self_attn', 'self_attention', 'attn', 'attention') if hasattr(layer, n))
            else:
                mod = layer.mlp
            if fam == 'bloom':  # bloom's attention / MLP modules add the residual themselves: hook the projection
                mod = mod.dense if kind == 'attn' else mod.dense_4h_to_h
            mod.register_forward_hook(lambda mm, i, o: seen.append(float((o[0] if isinstance(o, tuple) else o).abs().max())))
        with torch.no_grad():
            m(input_ids=torch.randint(3, 512, (2, 20)), use_cache=False)
        res[kind] = max(seen)
    j = json.load(open(os.path.join(d, 'reference.json')))
    dense = np.fromfile(os.path.join(d, 'reference/dense.f32'), '<f4')
    res['min_change_vs_dense'] = min(float(np.abs(np.fromfile(os.path.join(d, v['file']), '<f4') - dense).max())
                                     for k, v in j['masks'].items() if k != 'dense')
    print(fam, json.dumps(res), flush=True)
