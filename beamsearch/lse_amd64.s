//go:build !purego

#include "textflag.h"

// The vector kernels of logSumExp (lse_amd64.go). AVX2 + FMA: eight
// float32 lanes; two chains per iteration so the polynomial latencies overlap.

DATA expLo<>+0(SB)/4, $0xc2aeac50
DATA expLo<>+4(SB)/4, $0xc2aeac50
DATA expLo<>+8(SB)/4, $0xc2aeac50
DATA expLo<>+12(SB)/4, $0xc2aeac50
DATA expLo<>+16(SB)/4, $0xc2aeac50
DATA expLo<>+20(SB)/4, $0xc2aeac50
DATA expLo<>+24(SB)/4, $0xc2aeac50
DATA expLo<>+28(SB)/4, $0xc2aeac50
GLOBL expLo<>(SB), RODATA|NOPTR, $32

DATA expLog2e<>+0(SB)/4, $0x3fb8aa3b
DATA expLog2e<>+4(SB)/4, $0x3fb8aa3b
DATA expLog2e<>+8(SB)/4, $0x3fb8aa3b
DATA expLog2e<>+12(SB)/4, $0x3fb8aa3b
DATA expLog2e<>+16(SB)/4, $0x3fb8aa3b
DATA expLog2e<>+20(SB)/4, $0x3fb8aa3b
DATA expLog2e<>+24(SB)/4, $0x3fb8aa3b
DATA expLog2e<>+28(SB)/4, $0x3fb8aa3b
GLOBL expLog2e<>(SB), RODATA|NOPTR, $32

DATA expLn2hi<>+0(SB)/4, $0x3f318000
DATA expLn2hi<>+4(SB)/4, $0x3f318000
DATA expLn2hi<>+8(SB)/4, $0x3f318000
DATA expLn2hi<>+12(SB)/4, $0x3f318000
DATA expLn2hi<>+16(SB)/4, $0x3f318000
DATA expLn2hi<>+20(SB)/4, $0x3f318000
DATA expLn2hi<>+24(SB)/4, $0x3f318000
DATA expLn2hi<>+28(SB)/4, $0x3f318000
GLOBL expLn2hi<>(SB), RODATA|NOPTR, $32

DATA expLn2lo<>+0(SB)/4, $0xb95e8083
DATA expLn2lo<>+4(SB)/4, $0xb95e8083
DATA expLn2lo<>+8(SB)/4, $0xb95e8083
DATA expLn2lo<>+12(SB)/4, $0xb95e8083
DATA expLn2lo<>+16(SB)/4, $0xb95e8083
DATA expLn2lo<>+20(SB)/4, $0xb95e8083
DATA expLn2lo<>+24(SB)/4, $0xb95e8083
DATA expLn2lo<>+28(SB)/4, $0xb95e8083
GLOBL expLn2lo<>(SB), RODATA|NOPTR, $32

DATA expP0<>+0(SB)/4, $0x394fff49
DATA expP0<>+4(SB)/4, $0x394fff49
DATA expP0<>+8(SB)/4, $0x394fff49
DATA expP0<>+12(SB)/4, $0x394fff49
DATA expP0<>+16(SB)/4, $0x394fff49
DATA expP0<>+20(SB)/4, $0x394fff49
DATA expP0<>+24(SB)/4, $0x394fff49
DATA expP0<>+28(SB)/4, $0x394fff49
GLOBL expP0<>(SB), RODATA|NOPTR, $32

DATA expP1<>+0(SB)/4, $0x3ab743ce
DATA expP1<>+4(SB)/4, $0x3ab743ce
DATA expP1<>+8(SB)/4, $0x3ab743ce
DATA expP1<>+12(SB)/4, $0x3ab743ce
DATA expP1<>+16(SB)/4, $0x3ab743ce
DATA expP1<>+20(SB)/4, $0x3ab743ce
DATA expP1<>+24(SB)/4, $0x3ab743ce
DATA expP1<>+28(SB)/4, $0x3ab743ce
GLOBL expP1<>(SB), RODATA|NOPTR, $32

DATA expP2<>+0(SB)/4, $0x3c088908
DATA expP2<>+4(SB)/4, $0x3c088908
DATA expP2<>+8(SB)/4, $0x3c088908
DATA expP2<>+12(SB)/4, $0x3c088908
DATA expP2<>+16(SB)/4, $0x3c088908
DATA expP2<>+20(SB)/4, $0x3c088908
DATA expP2<>+24(SB)/4, $0x3c088908
DATA expP2<>+28(SB)/4, $0x3c088908
GLOBL expP2<>(SB), RODATA|NOPTR, $32

DATA expP3<>+0(SB)/4, $0x3d2aa9c1
DATA expP3<>+4(SB)/4, $0x3d2aa9c1
DATA expP3<>+8(SB)/4, $0x3d2aa9c1
DATA expP3<>+12(SB)/4, $0x3d2aa9c1
DATA expP3<>+16(SB)/4, $0x3d2aa9c1
DATA expP3<>+20(SB)/4, $0x3d2aa9c1
DATA expP3<>+24(SB)/4, $0x3d2aa9c1
DATA expP3<>+28(SB)/4, $0x3d2aa9c1
GLOBL expP3<>(SB), RODATA|NOPTR, $32

DATA expP4<>+0(SB)/4, $0x3e2aaaaa
DATA expP4<>+4(SB)/4, $0x3e2aaaaa
DATA expP4<>+8(SB)/4, $0x3e2aaaaa
DATA expP4<>+12(SB)/4, $0x3e2aaaaa
DATA expP4<>+16(SB)/4, $0x3e2aaaaa
DATA expP4<>+20(SB)/4, $0x3e2aaaaa
DATA expP4<>+24(SB)/4, $0x3e2aaaaa
DATA expP4<>+28(SB)/4, $0x3e2aaaaa
GLOBL expP4<>(SB), RODATA|NOPTR, $32

DATA expP5<>+0(SB)/4, $0x3f000000
DATA expP5<>+4(SB)/4, $0x3f000000
DATA expP5<>+8(SB)/4, $0x3f000000
DATA expP5<>+12(SB)/4, $0x3f000000
DATA expP5<>+16(SB)/4, $0x3f000000
DATA expP5<>+20(SB)/4, $0x3f000000
DATA expP5<>+24(SB)/4, $0x3f000000
DATA expP5<>+28(SB)/4, $0x3f000000
GLOBL expP5<>(SB), RODATA|NOPTR, $32

DATA expOne<>+0(SB)/4, $0x3f800000
DATA expOne<>+4(SB)/4, $0x3f800000
DATA expOne<>+8(SB)/4, $0x3f800000
DATA expOne<>+12(SB)/4, $0x3f800000
DATA expOne<>+16(SB)/4, $0x3f800000
DATA expOne<>+20(SB)/4, $0x3f800000
DATA expOne<>+24(SB)/4, $0x3f800000
DATA expOne<>+28(SB)/4, $0x3f800000
GLOBL expOne<>(SB), RODATA|NOPTR, $32

DATA expBias<>+0(SB)/4, $0x0000007f
DATA expBias<>+4(SB)/4, $0x0000007f
DATA expBias<>+8(SB)/4, $0x0000007f
DATA expBias<>+12(SB)/4, $0x0000007f
DATA expBias<>+16(SB)/4, $0x0000007f
DATA expBias<>+20(SB)/4, $0x0000007f
DATA expBias<>+24(SB)/4, $0x0000007f
DATA expBias<>+28(SB)/4, $0x0000007f
GLOBL expBias<>(SB), RODATA|NOPTR, $32

// func maxAVX2(x []float32) (top float32, nan bool)
// x's length is a positive multiple of 8.
TEXT ·maxAVX2(SB), NOSPLIT, $0-29
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VMOVUPS (SI), Y0
	VMOVUPS Y0, Y2
	VXORPS Y1, Y1, Y1
	VXORPS Y3, Y3, Y3
max16:
	CMPQ CX, $16
	JL max8
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMAXPS Y4, Y0, Y0
	VMAXPS Y5, Y2, Y2
	VCMPPS $3, Y4, Y4, Y6
	VCMPPS $3, Y5, Y5, Y7
	VORPS Y6, Y1, Y1
	VORPS Y7, Y3, Y3
	ADDQ $64, SI
	SUBQ $16, CX
	JMP max16
max8:
	CMPQ CX, $8
	JL maxdone
	VMOVUPS (SI), Y4
	VMAXPS Y4, Y0, Y0
	VCMPPS $3, Y4, Y4, Y6
	VORPS Y6, Y1, Y1
maxdone:
	VMAXPS Y2, Y0, Y0
	VORPS Y3, Y1, Y1
	VEXTRACTF128 $1, Y0, X2
	VMAXPS X2, X0, X0
	VPERMILPS $0x4e, X0, X2
	VMAXPS X2, X0, X0
	VPERMILPS $0xb1, X0, X2
	VMAXPS X2, X0, X0
	MOVSS X0, top+24(FP)
	VMOVMSKPS Y1, AX
	TESTL AX, AX
	SETNE nan+28(FP)
	VZEROUPPER
	RET

// func expSumAVX2(x []float32, t float32) float64
// returns the sum of exp(x[i]-t) in float64 over x, whose length is a
// multiple of 8; exp is a float32 polynomial (relative error about 1e-7),
// with x[i]-t clamped at -87.3.
TEXT ·expSumAVX2(SB), NOSPLIT, $0-40
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS t+24(FP), Y15
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
exp16:
	CMPQ CX, $16
	JL exp8
	VMOVUPS 0(SI), Y2
	VSUBPS Y15, Y2, Y2
	VMAXPS expLo<>(SB), Y2, Y2
	VMULPS expLog2e<>(SB), Y2, Y3
	VROUNDPS $0, Y3, Y3
	VFNMADD231PS expLn2hi<>(SB), Y3, Y2
	VFNMADD231PS expLn2lo<>(SB), Y3, Y2
	VMOVUPS expP0<>(SB), Y4
	VFMADD213PS expP1<>(SB), Y2, Y4
	VFMADD213PS expP2<>(SB), Y2, Y4
	VFMADD213PS expP3<>(SB), Y2, Y4
	VFMADD213PS expP4<>(SB), Y2, Y4
	VFMADD213PS expP5<>(SB), Y2, Y4
	VMULPS Y2, Y2, Y5
	VFMADD213PS Y2, Y5, Y4
	VADDPS expOne<>(SB), Y4, Y4
	VCVTPS2DQ Y3, Y3
	VPADDD expBias<>(SB), Y3, Y3
	VPSLLD $23, Y3, Y3
	VMULPS Y3, Y4, Y4
	VCVTPS2PD X4, Y5
	VADDPD Y5, Y0, Y0
	VEXTRACTF128 $1, Y4, X5
	VCVTPS2PD X5, Y5
	VADDPD Y5, Y1, Y1
	VMOVUPS 32(SI), Y6
	VSUBPS Y15, Y6, Y6
	VMAXPS expLo<>(SB), Y6, Y6
	VMULPS expLog2e<>(SB), Y6, Y7
	VROUNDPS $0, Y7, Y7
	VFNMADD231PS expLn2hi<>(SB), Y7, Y6
	VFNMADD231PS expLn2lo<>(SB), Y7, Y6
	VMOVUPS expP0<>(SB), Y8
	VFMADD213PS expP1<>(SB), Y6, Y8
	VFMADD213PS expP2<>(SB), Y6, Y8
	VFMADD213PS expP3<>(SB), Y6, Y8
	VFMADD213PS expP4<>(SB), Y6, Y8
	VFMADD213PS expP5<>(SB), Y6, Y8
	VMULPS Y6, Y6, Y9
	VFMADD213PS Y6, Y9, Y8
	VADDPS expOne<>(SB), Y8, Y8
	VCVTPS2DQ Y7, Y7
	VPADDD expBias<>(SB), Y7, Y7
	VPSLLD $23, Y7, Y7
	VMULPS Y7, Y8, Y8
	VCVTPS2PD X8, Y9
	VADDPD Y9, Y0, Y0
	VEXTRACTF128 $1, Y8, X9
	VCVTPS2PD X9, Y9
	VADDPD Y9, Y1, Y1
	ADDQ $64, SI
	SUBQ $16, CX
	JMP exp16
exp8:
	CMPQ CX, $8
	JL expdone
	VMOVUPS 0(SI), Y2
	VSUBPS Y15, Y2, Y2
	VMAXPS expLo<>(SB), Y2, Y2
	VMULPS expLog2e<>(SB), Y2, Y3
	VROUNDPS $0, Y3, Y3
	VFNMADD231PS expLn2hi<>(SB), Y3, Y2
	VFNMADD231PS expLn2lo<>(SB), Y3, Y2
	VMOVUPS expP0<>(SB), Y4
	VFMADD213PS expP1<>(SB), Y2, Y4
	VFMADD213PS expP2<>(SB), Y2, Y4
	VFMADD213PS expP3<>(SB), Y2, Y4
	VFMADD213PS expP4<>(SB), Y2, Y4
	VFMADD213PS expP5<>(SB), Y2, Y4
	VMULPS Y2, Y2, Y5
	VFMADD213PS Y2, Y5, Y4
	VADDPS expOne<>(SB), Y4, Y4
	VCVTPS2DQ Y3, Y3
	VPADDD expBias<>(SB), Y3, Y3
	VPSLLD $23, Y3, Y3
	VMULPS Y3, Y4, Y4
	VCVTPS2PD X4, Y5
	VADDPD Y5, Y0, Y0
	VEXTRACTF128 $1, Y4, X5
	VCVTPS2PD X5, Y5
	VADDPD Y5, Y1, Y1
expdone:
	VADDPD Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VPERMILPD $1, X0, X1
	VADDSD X1, X0, X0
	MOVSD X0, ret+32(FP)
	VZEROUPPER
	RET

// func subAVX2(dst, x []float32, lse float64)
// dst[i] = float32(float64(x[i]) - lse), rounded as Go rounds it; len(x)
// is a multiple of 8 and len(dst) >= len(x).
TEXT ·subAVX2(SB), NOSPLIT, $0-56
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	VBROADCASTSD lse+48(FP), Y15
sub8:
	CMPQ CX, $8
	JL subdone
	VCVTPS2PD (SI), Y0
	VCVTPS2PD 16(SI), Y1
	VSUBPD Y15, Y0, Y0
	VSUBPD Y15, Y1, Y1
	VCVTPD2PSY Y0, X0
	VCVTPD2PSY Y1, X1
	VMOVUPS X0, (DI)
	VMOVUPS X1, 16(DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP sub8
subdone:
	VZEROUPPER
	RET

// func firstAboveAVX2(x []float32, base, worst float32) int
// returns the first i with x[i]+base > worst (float32 addition), or
// len(x) when there is none; len(x) is a multiple of 8.
TEXT ·firstAboveAVX2(SB), NOSPLIT, $0-40
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS base+24(FP), Y15
	VBROADCASTSS worst+28(FP), Y14
	XORQ AX, AX
above16:
	MOVQ CX, DX
	SUBQ AX, DX
	CMPQ DX, $16
	JL above8
	VADDPS (SI)(AX*4), Y15, Y0
	VADDPS 32(SI)(AX*4), Y15, Y1
	VCMPPS $0x1e, Y14, Y0, Y0
	VCMPPS $0x1e, Y14, Y1, Y1
	VMOVMSKPS Y0, BX
	VMOVMSKPS Y1, DX
	SHLL $8, DX
	ORL DX, BX
	JNZ abovefound
	ADDQ $16, AX
	JMP above16
above8:
	CMPQ DX, $8
	JL abovenone
	VADDPS (SI)(AX*4), Y15, Y0
	VCMPPS $0x1e, Y14, Y0, Y0
	VMOVMSKPS Y0, BX
	TESTL BX, BX
	JNZ abovefound
	ADDQ $8, AX
	JMP above8nomore
above8nomore:
abovenone:
	MOVQ CX, ret+32(FP)
	VZEROUPPER
	RET
abovefound:
	BSFL BX, BX
	ADDQ BX, AX
	MOVQ AX, ret+32(FP)
	VZEROUPPER
	RET
