/*
 * fakecuda.c is a stand-in for the NVIDIA driver's libcuda.so.1 that the
 * runtime tests compile to check how CheckCUDA reports a driver without a
 * device, an old driver, or a device id out of range. cuInit returns
 * FAKE_CU_INIT (0 = CUDA_SUCCESS, 100 = CUDA_ERROR_NO_DEVICE),
 * cuDeviceGetCount gives FAKE_CU_COUNT devices and cuDriverGetVersion
 * FAKE_CU_VERSION (13000 = CUDA 13.0).
 *
 *   cc -shared -fPIC -DFAKE_CU_COUNT=0 -o libcuda-none.so fakecuda.c
 */
#ifndef FAKE_CU_INIT
#define FAKE_CU_INIT 0
#endif
#ifndef FAKE_CU_COUNT
#define FAKE_CU_COUNT 1
#endif
#ifndef FAKE_CU_VERSION
#define FAKE_CU_VERSION 13000
#endif

int cuInit(unsigned int flags) {
	(void)flags;
	return FAKE_CU_INIT;
}

int cuDeviceGetCount(int *count) {
	*count = FAKE_CU_COUNT;
	return 0;
}

int cuDriverGetVersion(int *version) {
	*version = FAKE_CU_VERSION;
	return 0;
}

int cuGetErrorName(int error, const char **name) {
	*name = error == 100 ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_UNKNOWN";
	return 0;
}
