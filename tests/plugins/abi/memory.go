package abi

import "unsafe"

// Buffers handed to the host by proxy_on_memory_allocate. The host writes into
// them and returns their address through an out-parameter; until the plugin
// claims the buffer (take), this map is the only reference keeping it alive.
// Go's GC does not move heap objects, so the address stays valid.
var pending = map[uint32][]byte{}

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) uint32 {
	buf := make([]byte, size+1) // +1: a zero-size request still gets a distinct address
	addr := uint32(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
	pending[addr] = buf
	return addr
}

// take returns the host-filled buffer at addr and drops it from pending.
func take(addr, size uint32) []byte {
	if addr == 0 {
		return nil
	}
	buf, ok := pending[addr]
	if !ok || size > uint32(len(buf)) {
		return nil // not an address we handed out: the host only returns ours
	}
	delete(pending, addr)
	return buf[:size]
}

// zero is a valid address for empty strings: the host rejects some null pointers.
var zero [1]byte

func strPtr(s string) (unsafe.Pointer, uint32) {
	if len(s) == 0 {
		return unsafe.Pointer(&zero[0]), 0
	}
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

func bytesPtr(b []byte) (unsafe.Pointer, uint32) {
	if len(b) == 0 {
		return unsafe.Pointer(&zero[0]), 0
	}
	return unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b))
}
