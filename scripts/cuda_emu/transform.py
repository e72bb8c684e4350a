# transform.py - rewrites a .cu file for the host emulation (scripts/cuda_emu/run.sh): each
# `kernel<<<grid, block, smem, stream>>>(args)` becomes `emu::launch(grid, block, smem, stream, [&]() { kernel(args); })`
# and `extern __shared__ T name[];` a pointer to the emulated dynamic shared memory.
import re, sys
src = open(sys.argv[1]).read()
src = re.sub(r'extern __shared__ (?:__align__\(\d+\) )?(\w+) (\w+)\[\];', r'\1 *\2 = (\1 *)emu::dyn_smem();', src)
out = []
i = 0
while True:
    j = src.find('<<<', i)
    if j < 0:
        out.append(src[i:]); break
    # kernel expression: identifier with optional <...>
    k = j
    if src[k-1] == '>':
        depth = 0
        while True:
            k -= 1
            if src[k] == '>': depth += 1
            elif src[k] == '<':
                depth -= 1
                if depth == 0: break
    while k > 0 and (src[k-1].isalnum() or src[k-1] == '_'): k -= 1
    kernel = src[k:j]
    e = src.find('>>>', j)
    cfg = src[j+3:e]
    assert src[e+3] == '(', src[e:e+20]
    depth = 0; p = e + 3
    while True:
        if src[p] == '(': depth += 1
        elif src[p] == ')':
            depth -= 1
            if depth == 0: break
        p += 1
    args = src[e+4:p]
    out.append(src[i:k])
    out.append('emu::launch(%s, [&]() { %s(%s); })' % (cfg, kernel, args))
    i = p + 1
print(''.join(out))
