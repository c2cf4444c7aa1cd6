package models

import _ "embed" // G2PEn

// G2PEn is models/g2p-en.onnx, the shipped grapheme-to-phoneme model
// packed into one file (python -m s2s_export pack models/g2p-en
// models/g2p-en.onnx), for programs that embed it:
//
//	g, err := s2s.OpenBytes(models.G2PEn, s2s.Options{})
//
// It costs a binary nothing unless the program uses it: the linker drops
// unreferenced embedded data.
//
//go:embed g2p-en.onnx
var G2PEn []byte
