import CKernels
import CLI
import Foundation

#if arch(x86_64)
// The numeric modules are compiled for x86-64-v3; on an older CPU they would stop on an illegal
// instruction. This file and the cpuid query are built for plain x86-64, so the check itself is safe.
if ckernels_read_cpu_features().avx2_fma == 0 {
    FileHandle.standardError.write(Data("gpt2-ddp: error: this CPU lacks AVX2 and FMA (or the OS does not enable them), which this build needs (x86-64-v3: Haswell, Zen 1 or later)\n".utf8))
    exit(1)
}
#endif
exit(GPT2DDP.main(arguments: Array(CommandLine.arguments.dropFirst())))
