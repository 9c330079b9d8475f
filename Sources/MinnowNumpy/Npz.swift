import Foundation
import ZIPFoundation

/// `.npz` archives (np.savez and np.savez_compressed): named arrays, in archive order.
public enum Npz {
    /// Reads every array. Keys are entry names without the `.npy` suffix (e.g. `inputs/x`).
    public static func read(path: String, limit: Int64 = 1 << 34) throws(NumpyError) -> [(name: String, array: NpyArray)] {
        guard FileManager.default.fileExists(atPath: path) else { throw .io(path: path, reason: "no such file") }
        let archive: Archive
        do { archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read) } catch {
            throw .notNpz(path: path, reason: "\(error)")
        }
        var out: [(String, NpyArray)] = []
        for entry in archive where entry.type == .file {
            let name = entry.path.hasSuffix(".npy") ? String(entry.path.dropLast(4)) : entry.path
            // The size is the archive's claim (up to 2^64 - 1 in zip64): compare before converting.
            guard entry.uncompressedSize <= UInt64(limit) + 4096 else {
                throw .tooLarge(array: name, bytes: Int64(clamping: entry.uncompressedSize), limit: limit)
            }
            let declared = Int64(entry.uncompressedSize)
            var bytes = [UInt8]()
            bytes.reserveCapacity(Int(declared))
            do {
                _ = try archive.extract(entry) { chunk in
                    guard Int64(bytes.count + chunk.count) <= declared else { throw NumpyError.badNpy(array: name, reason: "entry larger than declared") }
                    bytes.append(contentsOf: chunk)
                }
            } catch let e as NumpyError { throw e } catch {
                throw .notNpz(path: path, reason: "entry '\(entry.path)': \(error)")
            }
            out.append((name, try Npy.parse(bytes, name: name, limit: limit)))
        }
        return out
    }

    /// Writes arrays as an uncompressed `.npz` (what np.savez writes). Deterministic output.
    public static func write(path: String, arrays: [(name: String, array: NpyArray)]) throws(NumpyError) {
        let url = URL(fileURLWithPath: path)
        try? FileManager.default.removeItem(at: url)
        do {
            let archive = try Archive(url: url, accessMode: .create)
            let epoch = Date(timeIntervalSince1970: 315_532_800)  // 1980-01-01, the zip epoch
            for (name, array) in arrays {
                let data = Data(Npy.serialize(array))
                try archive.addEntry(with: name + ".npy", type: .file, uncompressedSize: Int64(data.count),
                                     modificationDate: epoch, provider: { position, size in
                                         data.subdata(in: Int(position)..<(Int(position) + size))
                                     })
            }
        } catch {
            throw .io(path: path, reason: "cannot write .npz: \(error)")
        }
    }

    /// Reads `.npy` (one array, named after the file) or `.npz`.
    public static func readAny(path: String) throws(NumpyError) -> [(name: String, array: NpyArray)] {
        if path.hasSuffix(".npy") {
            guard let data = FileManager.default.contents(atPath: path) else { throw .io(path: path, reason: "cannot read") }
            let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            return [(name, try Npy.parse(Array(data), name: name))]
        }
        return try read(path: path)
    }
}
